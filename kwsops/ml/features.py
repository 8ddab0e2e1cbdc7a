"""Log-mel features and the packed spectrogram data set (the split is :mod:`kwsops.ml.split`).

The same ``log_mel`` runs at training, validation and predict time, so a model only ever sees
features computed one way. The data set is packed into safetensors files (DVC is slow with
many small files): the train and test clips, the background-noise pieces when there are any,
and a ``meta.json``; nothing here pickles or unpickles. The clips' features are streamed to
disk batch by batch and read back lazily (:mod:`kwsops.ml.store`): no step holds a whole split.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch

from kwsops.atomic import atomic_write_json
from kwsops.audio.manifest import MANIFEST_NAME, ManifestParts, ManifestRow, manifest_parts
from kwsops.config import FeatureSettings, SplitSettings, TrainSettings, resolve_threads
from kwsops.ml.split import Clips, check_labels, fold_groups, plan_split, word_mask
from kwsops.ml.store import FeatureStore, SpectrogramDataError, read_tensor, stream_tensors
from kwsops.progress import ProgressFn, no_progress
from kwsops.text import plot_text

# Power floor before the log: below the -70 dBFS padding noise, so it only clips digital silence.
LOG_FLOOR = 1e-6
SPLIT_FILES = {"train": "train.safetensors", "test": "test.safetensors"}
NOISE_FILE = "noise.safetensors"
META_FILE = "meta.json"
MAX_NOISE_PIECES = 512  # clip-length pieces of background noise kept for training
_BATCH = 16  # clips per log-mel batch: measured best on one thread (the FFT output fits the cache)
DEFAULT_FEATURES = FeatureSettings()
DEFAULT_SPLIT = SplitSettings()


__all__ = ["SpectrogramDataError"]  # defined in kwsops.ml.store, raised from here too


@dataclass(frozen=True)
class SpecSplit:
    # [N, n_mels, frames]: a FeatureStore read from disk per index (float32 tensors), or a
    # float32 tensor when a caller builds a split in memory; index it per batch, never whole
    features: FeatureStore | torch.Tensor
    labels: torch.Tensor  # int64 [N]
    ids: list[str]
    speakers: list[str]
    label_names: list[str]
    feature_settings: FeatureSettings
    sources: list[str] | None = None  # input paths (data/input) of the clips, when recorded

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
    split_kind: str = "speaker"  # "official", "speaker" or "clip" (kwsops.ml.split)
    split_note: str = ""
    share_note: str = ""  # when the test share lands far from test_size: the share and why
    fold_note: str = ""  # when the folds fall back to clip by clip, why
    noise_pieces: int = 0

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
    spectrogram = transform.spectrogram
    with torch.no_grad():
        stft = torch.stft(
            waveforms.float(),
            n_fft=spectrogram.n_fft,
            hop_length=spectrogram.hop_length,
            win_length=spectrogram.win_length,
            window=spectrogram.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        # torchaudio's Spectrogram takes abs() then squares it: a square root for nothing
        power = stft.real.square() + stft.imag.square()
        mel = torch.matmul(transform.mel_scale.fb.T, power)
    return torch.log(mel.clamp_min(LOG_FLOOR))


def frames_for(samples: int, settings: FeatureSettings) -> int:
    return samples // settings.hop_length + 1


def training_clips(ids: list[str], speakers: list[str]) -> dict:
    """What a model was trained on, small enough for its metadata: the clip count, a digest of
    the sorted clip ids and the speakers. Validate compares it with the test split it scores on."""
    from kwsops.stamps import digest

    return {
        "clips": len(ids),
        "ids_sha256": digest(sorted(ids)),
        "speakers": sorted({s for s in speakers if s}),
    }


def usable_parts(output_dir: Path) -> ManifestParts:
    """The manifest's kept clips, noise and split lists; SpectrogramDataError when unreadable
    or when no clip is kept."""
    path = Path(output_dir) / MANIFEST_NAME
    try:
        parts = manifest_parts(output_dir)
    except (OSError, ValueError) as exc:
        raise SpectrogramDataError(str(exc)) from None
    if not parts.clips:
        raise SpectrogramDataError(f"{path}: no kept clips; add recordings to data/input/<Label>/")
    return parts


def split_clips(rows: list[ManifestRow]) -> Clips:
    """The split's view of the kept clips (labels indexed in sorted order)."""
    names = sorted({r.label for r in rows})
    index = {name: i for i, name in enumerate(names)}
    return Clips(
        labels=np.array([index[r.label] for r in rows], dtype=np.int64),
        label_names=names,
        speakers=[r.speaker or "" for r in rows],
        ids=[r.output for r in rows],
        official=[r.split or "" for r in rows],
        folders=[r.folder or "" for r in rows],
        sources=[r.source for r in rows],
    )


def _load_clip(path: Path, sample_rate: int) -> np.ndarray:
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise SpectrogramDataError(f"{path}: unreadable ({exc}); rerun Preprocess") from exc
    _check_rate(path, rate, sample_rate)
    return audio.mean(axis=1)


def _check_rate(path: Path, rate: int, sample_rate: int) -> None:
    if rate != sample_rate:
        raise SpectrogramDataError(
            f"{path}: sample rate {rate} Hz, features expect {sample_rate} Hz; rerun Preprocess"
        )


def _frames(path: Path) -> int:
    try:
        return sf.info(path).frames
    except (OSError, RuntimeError) as exc:
        raise SpectrogramDataError(f"{path}: unreadable ({exc}); rerun Preprocess") from exc


def _fit(audio: np.ndarray, samples: int) -> np.ndarray:
    if len(audio) >= samples:
        return audio[:samples]
    return np.pad(audio, (0, samples - len(audio)))


def noise_pieces(
    output_dir: Path, rows: list[ManifestRow], samples: int, sample_rate: int
) -> np.ndarray:
    """Background-noise recordings cut into clip-length pieces ``[P, samples]`` (a recording
    shorter than a clip is repeated to fill one): at most MAX_NOISE_PIECES, evenly spread over
    all of them and read one recording at a time; digital silence left out."""
    paths = [Path(output_dir) / row.output for row in rows]
    counts = [max(1, _frames(path) // samples) for path in paths]
    total = sum(counts)
    chosen = set(np.linspace(0, total - 1, min(total, MAX_NOISE_PIECES)).round().astype(int))
    pieces, first = [], 0
    for path, count in zip(paths, counts, strict=True):
        wanted = [k for k in range(count) if first + k in chosen]
        first += count
        if not wanted:
            continue
        audio = _load_clip(path, sample_rate)
        if len(audio) < samples:
            audio = np.resize(audio, samples)
        pieces += [audio[k * samples : (k + 1) * samples] for k in wanted]
    pieces = [p for p in pieces if float(np.sqrt(np.mean(np.square(p)))) > 1e-5]
    return np.stack(pieces) if pieces else np.zeros((0, samples), dtype=np.float32)


def clip_samples(paths: list[Path], looks: int = 256) -> int:
    """The clips' length in samples: Preprocess makes them all equal, so the most common length
    of ``looks`` clips spread over the list (opening every header cost 14 % of the stage at 20 000
    clips); a clip of another length is cut or zero-padded to it."""
    picks = np.unique(np.linspace(0, len(paths) - 1, min(looks, len(paths))).round().astype(int))
    return Counter(_frames(paths[i]) for i in picks).most_common(1)[0][0]


def _read_clips(paths: list[Path], samples: int, sample_rate: int) -> np.ndarray:
    """``[len(paths), samples]`` float32, each clip cut or zero-padded to ``samples``, decoded
    straight into one buffer (no per-clip arrays)."""
    out = np.empty((len(paths), samples), dtype=np.float32)
    for row, path in zip(out, paths, strict=True):
        try:
            with sf.SoundFile(path) as handle:
                _check_rate(path, handle.samplerate, sample_rate)
                if handle.channels == 1:
                    handle.read(samples, dtype="float32", out=row, fill_value=0.0)
                else:
                    row[:] = _fit(handle.read(samples, dtype="float32").mean(axis=1), samples)
        except (OSError, RuntimeError) as exc:
            raise SpectrogramDataError(f"{path}: unreadable ({exc}); rerun Preprocess") from exc
    return out


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _log_mel_batches(
    paths: list[Path], samples: int, features: FeatureSettings, workers: int
) -> Iterator[torch.Tensor]:
    """Log-mels of ``paths`` in order, ``_BATCH`` clips at a time.

    ``workers`` threads each decode a batch and compute its log-mels with one torch thread
    (libsndfile and torch run without the GIL): measured on 2 busy cores, that is 2-3x the
    clips/s of one batch at a time over torch's own threads, whose FFTs of small batches mostly
    wait for each other. At most two batches per worker are in flight (memory stays small)."""

    def job(group: list[Path]) -> torch.Tensor:
        return log_mel(
            torch.from_numpy(_read_clips(group, samples, features.sample_rate)), features
        )

    groups = iter(paths[i : i + _BATCH] for i in range(0, len(paths), _BATCH))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="kwsops-log-mel")
    try:
        with _one_torch_thread():
            pending = deque(pool.submit(job, g) for g in itertools.islice(groups, 2 * workers))
            while pending:
                batch = pending.popleft().result()
                pending.extend(pool.submit(job, g) for g in itertools.islice(groups, 1))
                yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def make_spectrogram_dataset(
    output_dir: Path,
    spec_dir: Path,
    features: FeatureSettings = DEFAULT_FEATURES,
    split: SplitSettings = DEFAULT_SPLIT,
    progress: ProgressFn = no_progress,
    *,
    folds: int = TrainSettings().folds,
    expected_labels: tuple[str, ...] = (),
) -> SpecSummary:
    """Log-mels of every kept clip in ``output_dir``, split into train/test, packed in
    ``spec_dir`` with the background-noise pieces. Checks first, before any work, that the
    clips can make a model with ``folds`` folds (:class:`kwsops.ml.split.DataCheckError`)."""
    start = time.monotonic()
    output_dir, spec_dir = Path(output_dir), Path(spec_dir)
    parts = usable_parts(output_dir)
    clips = split_clips(parts.clips)
    check_labels(clips, expected_labels, folds)
    plan = plan_split(clips, split, parts.lists)
    train_speakers = [clips.speakers[i] for i in plan.train]
    train_words = word_mask(clips.labels[plan.train], clips.label_names)
    _, fold_note = fold_groups(
        train_speakers, [clips.ids[i] for i in plan.train], folds, train_words
    )
    label_names, labels = clips.label_names, clips.labels
    ids, speakers = clips.ids, clips.speakers

    paths = [output_dir / r.output for r in parts.clips]
    samples = clip_samples(paths)
    n_mels, frames = features.n_mels, frames_for(samples, features)
    meta: dict = {
        "labels": label_names,
        "features": features.as_dict(),
        "split": plan.meta(split, parts.lists),
    }
    spec_dir.mkdir(parents=True, exist_ok=True)
    done, total, workers = 0, len(paths), resolve_threads()
    for which, index in (("train", plan.train), ("test", plan.test)):
        specs = {
            "features": (np.float32, (len(index), n_mels, frames)),
            "labels": (np.int64, (len(index),)),
        }
        with stream_tensors(spec_dir / SPLIT_FILES[which], specs) as out:
            out.write("labels", labels[index])
            for batch in _log_mel_batches([paths[i] for i in index], samples, features, workers):
                out.write("features", batch)  # a shape mismatch raises: no file is left
                done += len(batch)
                progress(done, total, f"log-mel {done}/{total} clips")
        meta[which] = {
            key: [values[i] for i in index]
            for key, values in (("ids", ids), ("speakers", speakers), ("sources", clips.sources))
        }
    noise = noise_pieces(output_dir, parts.noise, samples, features.sample_rate)
    if len(noise):
        noise_mels = log_mel(torch.from_numpy(noise), features)
        with stream_tensors(
            spec_dir / NOISE_FILE, {"features": (np.float32, noise_mels.shape)}
        ) as out:
            out.write("features", noise_mels)
        meta["noise"] = {"pieces": len(noise), "sources": [r.source for r in parts.noise]}
    atomic_write_json(spec_dir / META_FILE, meta)
    train_idx, test_idx = plan.train, plan.test

    def counts(index: np.ndarray) -> dict[str, int]:
        found = Counter(labels[index].tolist())
        return {name: found.get(i, 0) for i, name in enumerate(label_names)}

    return SpecSummary(
        labels=label_names,
        n_train=len(train_idx),
        n_test=len(test_idx),
        train_speakers=sorted({speakers[i] for i in train_idx if speakers[i]}),
        test_speakers=sorted({speakers[i] for i in test_idx if speakers[i]}),
        n_mels=n_mels,
        frames=frames,
        train_counts=counts(train_idx),
        test_counts=counts(test_idx),
        seconds=round(time.monotonic() - start, 3),
        split_kind=plan.kind,
        split_note=plan.note,
        share_note=plan.share_note,
        fold_note=fold_note,
        noise_pieces=len(noise),
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
    """One side of the packed data set (safetensors + JSON only; nothing is unpickled). The
    features stay on disk (:class:`kwsops.ml.store.FeatureStore`); labels and ids are loaded."""
    if which not in SPLIT_FILES:
        raise ValueError(f"which must be 'train' or 'test', not {which!r}")
    meta = load_meta(spec_dir)
    path = Path(spec_dir) / SPLIT_FILES[which]
    feats, labels = FeatureStore(path), read_tensor(path, "labels")
    ids, speakers = meta[which]["ids"], meta[which]["speakers"]
    if not (labels.dim() == 1 and len(labels) == len(feats) == len(ids) == len(speakers)):
        raise SpectrogramDataError(
            f"{path}: tensor shapes do not match {Path(spec_dir) / META_FILE}; "
            "rerun MakeSpectrograms"
        )
    return SpecSplit(
        features=feats,
        labels=labels.long(),
        ids=list(ids),
        speakers=list(speakers),
        label_names=list(meta["labels"]),
        feature_settings=FeatureSettings(**meta["features"]),
        sources=list(meta[which].get("sources") or ids),
    )


def load_noise(spec_dir: Path) -> torch.Tensor | None:
    """The background-noise pieces' log-mels ``[P, n_mels, frames]``, or None without any."""
    path = Path(spec_dir) / NOISE_FILE
    if not path.is_file():
        return None
    return read_tensor(path, "features").float()


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
        ax.set_title(plot_text(f"{name} — {data.speakers[i] or '?'}", 60), fontsize=9)
        ax.set_xlabel("s", fontsize=8)
        ax.set_ylabel("mel bin", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
