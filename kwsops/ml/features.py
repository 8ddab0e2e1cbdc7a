"""Log-mel features, the speaker-grouped test split and the packed spectrogram data set.

The same ``log_mel`` runs at training, validation and predict time, so a model only ever sees
features computed one way. The data set is packed into two safetensors files (DVC is slow with
many small files) and a ``meta.json``; nothing here pickles or unpickles.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch

from kwsops.atomic import atomic_write_json
from kwsops.audio.manifest import MANIFEST_NAME, ManifestRow, kept_clips
from kwsops.config import FeatureSettings, SplitSettings
from kwsops.progress import ProgressFn, no_progress

# Power floor before the log: below the -70 dBFS padding noise, so it only clips digital silence.
LOG_FLOOR = 1e-6
SPLIT_FILES = {"train": "train.safetensors", "test": "test.safetensors"}
META_FILE = "meta.json"
_BATCH = 64
DEFAULT_FEATURES = FeatureSettings()
DEFAULT_SPLIT = SplitSettings()


class SpectrogramDataError(ValueError):
    """The manifest, a clip or a packed spectrogram file cannot be used; the message says which."""


@dataclass(frozen=True)
class SpecSplit:
    features: torch.Tensor  # float32 [N, n_mels, frames]
    labels: torch.Tensor  # int64 [N]
    ids: list[str]
    speakers: list[str]
    label_names: list[str]
    feature_settings: FeatureSettings

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class SpecSummary:
    labels: list[str]
    n_train: int
    n_test: int
    train_speakers: list[str]
    test_speakers: list[str]
    n_mels: int
    frames: int
    train_counts: dict[str, int]
    test_counts: dict[str, int]
    seconds: float

    @property
    def train_count(self) -> int:
        return self.n_train

    @property
    def test_count(self) -> int:
        return self.n_test

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@functools.lru_cache(maxsize=8)
def _mel_transform(settings: FeatureSettings):
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=settings.sample_rate,
        n_fft=settings.n_fft,
        win_length=settings.win_length,
        hop_length=settings.hop_length,
        f_min=settings.f_min,
        f_max=settings.f_max,
        n_mels=settings.n_mels,
        power=2.0,
        center=True,
    )


def log_mel(waveforms: torch.Tensor, settings: FeatureSettings = DEFAULT_FEATURES) -> torch.Tensor:
    """``[B, samples]`` float waveforms in [-1, 1] -> ``[B, n_mels, frames]`` natural-log mel power."""
    if waveforms.dim() == 1:
        waveforms = waveforms.unsqueeze(0)
    transform = _mel_transform(settings).to(waveforms.device)
    with torch.no_grad():
        mel = transform(waveforms.float())
    return torch.log(mel.clamp_min(LOG_FLOOR))


def frames_for(samples: int, settings: FeatureSettings) -> int:
    return samples // settings.hop_length + 1


def speaker_groups(speakers: list[str], ids: list[str]) -> np.ndarray:
    """Group number per clip: one group per speaker; a clip without a speaker is its own group."""
    keys = [f"speaker:{s}" if s else f"clip:{i}" for s, i in zip(speakers, ids, strict=True)]
    index = {k: n for n, k in enumerate(dict.fromkeys(keys))}
    return np.array([index[k] for k in keys], dtype=np.int64)


def training_clips(ids: list[str], speakers: list[str]) -> dict:
    """What a model was trained on, small enough for its metadata: the clip count, a digest of
    the sorted clip ids and the speakers. Validate compares it with the test split it scores on."""
    from kwsops.stamps import digest

    return {
        "clips": len(ids),
        "ids_sha256": digest(sorted(ids)),
        "speakers": sorted({s for s in speakers if s}),
    }


def kept_rows(output_dir: Path) -> list[ManifestRow]:
    """The manifest's kept clips (sorted by output path); SpectrogramDataError when none."""
    path = Path(output_dir) / MANIFEST_NAME
    try:
        rows = kept_clips(output_dir)
    except (OSError, ValueError) as exc:
        raise SpectrogramDataError(str(exc)) from None
    if not rows:
        raise SpectrogramDataError(f"{path}: no kept clips; add recordings to data/input/<Label>/")
    return rows


def _load_clip(path: Path, sample_rate: int) -> np.ndarray:
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise SpectrogramDataError(f"{path}: unreadable ({exc}); rerun Preprocess") from exc
    if rate != sample_rate:
        raise SpectrogramDataError(
            f"{path}: sample rate {rate} Hz, features expect {sample_rate} Hz; rerun Preprocess"
        )
    return audio.mean(axis=1)


def _frames(path: Path) -> int:
    try:
        return sf.info(path).frames
    except (OSError, RuntimeError) as exc:
        raise SpectrogramDataError(f"{path}: unreadable ({exc}); rerun Preprocess") from exc


def _fit(audio: np.ndarray, samples: int) -> np.ndarray:
    if len(audio) >= samples:
        return audio[:samples]
    return np.pad(audio, (0, samples - len(audio)))


def holdout_indices(
    labels: np.ndarray, groups: np.ndarray, split: SplitSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: stratified by label, no group (speaker) on both sides, seeded."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise SpectrogramDataError(
            "need clips from at least 2 speakers to hold out unseen speakers for the test set"
        )
    n_splits = max(2, min(round(1 / split.test_size), n_groups))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=split.seed)
    target = split.test_size * len(labels)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        candidates = list(folds.split(np.zeros(len(labels)), labels, groups))
    # the fold whose size is nearest the requested share; the first one on ties
    train, test = min(candidates, key=lambda c: abs(len(c[1]) - target))
    return np.sort(train), np.sort(test)


def make_spectrogram_dataset(
    output_dir: Path,
    spec_dir: Path,
    features: FeatureSettings = DEFAULT_FEATURES,
    split: SplitSettings = DEFAULT_SPLIT,
    progress: ProgressFn = no_progress,
) -> SpecSummary:
    """Log-mels of every kept clip in ``output_dir``, split into train/test, packed in ``spec_dir``."""
    from safetensors.torch import save_file

    start = time.monotonic()
    output_dir, spec_dir = Path(output_dir), Path(spec_dir)
    rows = kept_rows(output_dir)
    label_names = sorted({r.label for r in rows})
    label_index = {name: i for i, name in enumerate(label_names)}
    ids = [r.output for r in rows]
    speakers = [r.speaker or "" for r in rows]
    labels = np.array([label_index[r.label] for r in rows], dtype=np.int64)

    paths = [output_dir / r.output for r in rows]
    samples = Counter(_frames(p) for p in paths).most_common(1)[0][0]  # Preprocess: all equal
    chunks = []
    total = len(paths)
    for begin in range(0, total, _BATCH):  # stream: memory stays one batch of audio
        group = paths[begin : begin + _BATCH]
        batch = np.stack([_fit(_load_clip(p, features.sample_rate), samples) for p in group])
        chunks.append(log_mel(torch.from_numpy(batch), features))
        done = begin + len(group)
        progress(done, total, f"log-mel {done}/{total} clips")
    spec = torch.cat(chunks).contiguous()

    train_idx, test_idx = holdout_indices(labels, speaker_groups(speakers, ids), split)
    meta: dict = {
        "labels": label_names,
        "features": features.as_dict(),
        "split": {"test_size": split.test_size, "seed": split.seed},
    }
    spec_dir.mkdir(parents=True, exist_ok=True)
    for which, index in (("train", train_idx), ("test", test_idx)):
        tensors = {
            "features": spec[torch.from_numpy(index)].contiguous(),
            "labels": torch.from_numpy(labels[index]).contiguous(),
        }
        save_file(tensors, str(spec_dir / SPLIT_FILES[which]))
        meta[which] = {"ids": [ids[i] for i in index], "speakers": [speakers[i] for i in index]}
    atomic_write_json(spec_dir / META_FILE, meta)

    def counts(index: np.ndarray) -> dict[str, int]:
        found = Counter(labels[index].tolist())
        return {name: found.get(i, 0) for i, name in enumerate(label_names)}

    return SpecSummary(
        labels=label_names,
        n_train=len(train_idx),
        n_test=len(test_idx),
        train_speakers=sorted({speakers[i] for i in train_idx if speakers[i]}),
        test_speakers=sorted({speakers[i] for i in test_idx if speakers[i]}),
        n_mels=int(spec.shape[1]),
        frames=int(spec.shape[2]),
        train_counts=counts(train_idx),
        test_counts=counts(test_idx),
        seconds=round(time.monotonic() - start, 3),
    )


def load_meta(spec_dir: Path) -> dict:
    path = Path(spec_dir) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        FeatureSettings(**meta["features"])
        meta["labels"], meta["train"]["ids"], meta["test"]["speakers"]  # noqa: B018
    except FileNotFoundError as exc:
        raise SpectrogramDataError(f"{path}: not found; run MakeSpectrograms first") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpectrogramDataError(f"{path}: unreadable or incomplete ({exc})") from exc
    return meta


def load_split(spec_dir: Path, which: Literal["train", "test"]) -> SpecSplit:
    """One side of the packed data set (safetensors + JSON only; nothing is unpickled)."""
    from safetensors.torch import load_file

    if which not in SPLIT_FILES:
        raise ValueError(f"which must be 'train' or 'test', not {which!r}")
    meta = load_meta(spec_dir)
    path = Path(spec_dir) / SPLIT_FILES[which]
    try:
        tensors = load_file(str(path))
        feats, labels = tensors["features"], tensors["labels"]
    except FileNotFoundError as exc:
        raise SpectrogramDataError(f"{path}: not found; run MakeSpectrograms first") from exc
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise SpectrogramDataError(f"{path}: not a kwsops spectrogram file ({exc})") from exc
    ids, speakers = meta[which]["ids"], meta[which]["speakers"]
    if not (feats.dim() == 3 and len(labels) == len(feats) == len(ids) == len(speakers)):
        raise SpectrogramDataError(
            f"{path}: tensor shapes do not match {Path(spec_dir) / META_FILE}"
        )
    return SpecSplit(
        features=feats.float(),
        labels=labels.long(),
        ids=list(ids),
        speakers=list(speakers),
        label_names=list(meta["labels"]),
        feature_settings=FeatureSettings(**meta["features"]),
    )


def spectrogram_examples(spec_dir: Path, path: Path, per_label: int = 1) -> Path:
    """A PNG grid of training log-mels, ``per_label`` per label (matplotlib Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = load_split(spec_dir, "train")
    picks: list[tuple[str, int]] = []
    for index, name in enumerate(data.label_names):
        found = torch.nonzero(data.labels == index).flatten().tolist()[:per_label]
        picks += [(name, i) for i in found]
    cols = min(len(picks), 3) or 1
    rows = max(1, math.ceil(len(picks) / cols))
    fig = Figure(figsize=(4 * cols, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    hop_s = data.feature_settings.hop_length / data.feature_settings.sample_rate
    for n, (name, i) in enumerate(picks):
        ax = fig.add_subplot(rows, cols, n + 1)
        spec = data.features[i].numpy()
        ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0, spec.shape[1] * hop_s, 0, spec.shape[0]),
        )
        ax.set_title(f"{name} — {data.speakers[i] or '?'}", fontsize=9)
        ax.set_xlabel("s", fontsize=8)
        ax.set_ylabel("mel bin", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
