"""Defaults shared by every stage; they match the original study (see DESIGN.md)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

DEMO_LABELS: tuple[str, ...] = ("catch", "gun", "index", "like", "relax", "rock")
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".ogg", ".opus", ".mp3", ".flac")
WHATSAPP_DIR = "Whatsapp"
DEFAULT_BATCH_SIZES: tuple[int, ...] = (16, 32, 64)
SEED = 42
THREADS_ENV = "KWSOPS_TORCH_THREADS"  # torch threads per training process (default: all cores)


def available_cores() -> int:
    """The cores this process may use (its CPU affinity where the system has one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, int(cores or 1))


def resolve_threads(threads: int | None = None) -> int:
    """Explicit argument, else ``$KWSOPS_TORCH_THREADS``, else every core this process may use."""
    if threads is None and os.environ.get(THREADS_ENV, "").strip():
        try:
            threads = int(os.environ[THREADS_ENV])
        except ValueError as exc:
            raise ValueError(f"{THREADS_ENV}={os.environ[THREADS_ENV]!r} is not a number") from exc
    if threads is None or threads <= 0:
        threads = available_cores()
    return max(1, int(threads))


@contextlib.contextmanager
def restored_environ(*names: str) -> Iterator[None]:
    """Restore the environment variables ``names`` on exit (unset again when they were unset),
    whatever the block set them to."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class AudioSettings:
    """How raw recordings become fixed-length clips."""

    sample_rate: int = 16_000
    clip_seconds: float = 2.6
    trim_top_db: float = 30.0
    pad_noise_dbfs: float = -70.0
    silent_peak_dbfs: float = -50.0

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate * self.clip_seconds)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LayoutSettings:
    """How recordings are found under data/input ([Preprocess] in luigi.cfg): the labels
    (empty: every label folder found) and a speaker regex with a group named ``speaker``
    (empty: ``<speaker>__<rest>`` and Speech Commands' ``<speaker>_nohash_<n>``)."""

    labels: tuple[str, ...] = ()
    speaker_pattern: str = ""
    # Speech Commands' convention: with a labels list, the folders it does not name are
    # unknown speech (``_unknown_``) instead of rejected recordings
    unknown_words: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))

    def as_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "speaker_pattern": self.speaker_pattern,
            "unknown_words": self.unknown_words,
        }


@dataclass(frozen=True)
class FeatureSettings:
    """Log-mel spectrogram settings; saved beside every model so inference matches training."""

    sample_rate: int = 16_000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 7_600.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SplitSettings:
    test_size: float = 0.1
    seed: int = SEED


# the compute precision of the training steps (kwsops.ml.compute.step_dtype); weights, the
# optimizer and every score stay float32
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class TrainSettings:
    """One fold's training. The study ran 1000 epochs at lr 0.001; a 30-epoch one-cycle schedule
    needs a higher peak (0.005) to converge, and fits 15 folds in minutes on two CPU cores."""

    batch_size: int = 32
    epochs: int = 30
    learning_rate: float = 0.005  # peak of the one-cycle schedule
    folds: int = 5
    seed: int = SEED
    patience: int = 10  # epochs without a lower validation loss
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    precision: str = "auto"  # one of PRECISIONS
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"training precision {self.precision!r}: use one of {', '.join(PRECISIONS)}"
            )

    def as_dict(self) -> dict:
        return asdict(self)
