"""The Preprocess stage: every raw recording becomes a fixed-length clip or a manifest reason.

``preprocess`` writes ``<output_dir>/<Label>/<name>.wav``, the background-noise recordings
whole at the clip sample rate in ``<output_dir>/_noise/``, and ``<output_dir>/manifest.csv``
(docs/ARCHITECTURE.md). Unknown speech (``_unknown_``) longer than a clip, a sentence, is cut
into clip-length pieces, one manifest row each; ``_silence_`` clips are pieces of the
background noise plus generated noise (:mod:`kwsops.audio.silence`), as many generated as the
median word has clips. Which file is what comes from :mod:`kwsops.audio.layout`. It never
fails on a bad recording: each one gets a one-line reason. Files are shared out to a process
pool; every clip depends only on its file, the settings and the seed, so the output bytes do
not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import re
import signal
import stat
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kwsops.audio.clip import (
    DEFAULT_SETTINGS,
    MAX_NOISE_SECONDS,
    AudioError,
    clip_rng,
    decode,
    resample,
    shape_clip,
    write_wav,
)
from kwsops.audio.layout import DEFAULT_LAYOUT, Placement, is_supported, plan_layout
from kwsops.audio.manifest import (
    MANIFEST_NAME,
    ManifestRow,
    reason_kind,
    write_manifest,
)
from kwsops.audio.silence import GENERATED_SOURCE, generated_noise, noise_pieces
from kwsops.config import AudioSettings, LayoutSettings
from kwsops.entries import classify, walk
from kwsops.keywords import SILENCE, UNKNOWN, is_word
from kwsops.procs import die_with_parent
from kwsops.progress import ProgressFn, no_progress
from kwsops.text import one_line


@dataclass(frozen=True)
class DurationStats:
    count: int = 0
    mean: float | None = None
    min: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: list[float]) -> DurationStats:
        if not values:
            return cls()
        return cls(len(values), float(np.mean(values)), min(values), max(values))


NOISE_DIR = "_noise"  # data/output/_noise/: never a label folder (labels never start with _)


@dataclass(frozen=True)
class PreprocessSummary:
    kept: int
    rejected: int
    kept_per_label: dict[str, int]
    rejected_per_label: dict[str, int]  # files without a label count under ""
    reasons: dict[str, int]  # reason kind (see REASON_KINDS) -> files
    duration_in: DurationStats
    duration_out: DurationStats
    seconds: float
    speakers: int = 0  # speakers the kept clips name
    merged_spellings: dict[str, list[str]] = field(default_factory=dict)  # label -> others
    noise: int = 0  # background-noise recordings prepared for training
    noise_seconds: float = 0.0
    split_lists: dict[str, int] = field(default_factory=dict)  # official list -> files named

    @property
    def labels(self) -> list[str]:
        return sorted(self.kept_per_label)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Job:
    input_dir: Path
    output_dir: Path
    settings: AudioSettings
    seed: int


def scan_inputs(input_dir: Path) -> list[str]:
    """Every entry under ``input_dir`` but folders (symlinked folders included, not followed;
    dot-entries too: DVC versions them, so the manifest lists them), as sorted posix paths
    relative to it. Nothing is opened (:mod:`kwsops.entries`)."""
    return sorted(entry.rel for entry in walk(input_dir))


def output_name(rel: str, label: str) -> str:
    """``<Label>/<stem>-<hash of the source path>.wav``: unique per source, speaker prefix kept."""
    stem = re.sub(r"[^\w.\-]+", "_", Path(rel).stem)[:80] or "clip"
    tag = hashlib.sha256(rel.encode("utf-8")).hexdigest()[:10]
    return f"{label}/{stem}-{tag}.wav"


def _row(rel: str, place: Placement, status: str, reason: str = "", **values) -> ManifestRow:
    label, speaker, folder = place.label, place.speaker, place.folder
    return ManifestRow(
        rel, label, speaker, status, reason, folder=folder, split=place.split, **values
    )


def _check(input_dir: Path, rel: str, place: Placement) -> ManifestRow | None:
    """The row decided without decoding, or None when the file goes to a worker."""
    if place.kind == "hidden":
        return _row(rel, place, "rejected", place.reason)
    entry = classify(input_dir / rel, rel)  # only a regular file (or a link to one) is opened
    if place.kind == "list" and entry.readable:
        return _row(rel, place, "list")
    suffix = Path(rel).suffix.lower()
    reason = ""
    if not entry.readable:
        reason = entry.reason
    elif not is_supported(rel):
        reason = f"unsupported type {suffix}" if suffix else "unsupported type (no extension)"
    elif place.reason:
        reason = place.reason
    return _row(rel, place, "rejected", reason) if reason else None


SPLIT_LIST_BYTES = 64 << 20  # Speech Commands' lists are under 1 MB


def read_split_list(input_dir: Path, rel: str) -> str | None:
    """A split list's text, or None when it is not a regular file of sensible size."""
    try:
        info = os.stat(input_dir / rel, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode) or info.st_size > SPLIT_LIST_BYTES:
            return None
        return (input_dir / rel).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _sanitise(message: str, job: _Job) -> str:
    for root in (job.input_dir, job.output_dir):
        message = message.replace(f"{root}{os.sep}", "").replace(str(root), ".")
    return one_line(message)


def _noise_pcm(mono: np.ndarray, rate_in: int, settings: AudioSettings) -> np.ndarray:
    """A background-noise recording whole, at the clip rate, as 16-bit samples (level kept:
    training mixes it at a drawn SNR)."""
    mono = mono - mono.mean(dtype=np.float64).astype(np.float32)
    peak = float(np.abs(mono).max())
    peak_db = 20.0 * np.log10(peak) if peak > 0 else -np.inf
    if peak_db < settings.silent_peak_dbfs:
        raise AudioError(f"silent: peak {peak_db:.1f} dBFS")
    audio = resample(mono, rate_in, settings.sample_rate)
    return np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)


def _pieces(audio: np.ndarray, job: _Job, rel: str) -> list[tuple[np.ndarray, float]]:
    """Unknown speech longer than a clip (a sentence), at the clip rate, cut into consecutive
    clip-length pieces, each shaped like a clip; a piece with nothing in it is left out."""
    settings, samples = job.settings, job.settings.clip_samples
    rng, out = clip_rng(job.seed, rel), []
    for start in range(0, max(1, len(audio) - samples // 4), samples):
        try:
            out.append(
                shape_clip(audio[start : start + samples], settings.sample_rate, settings, rng)
            )
        except AudioError:
            continue
    if not out:
        raise AudioError("silent: no piece holds sound")
    return out


def _clips(job: _Job, rel: str, place: Placement, mono: np.ndarray, rate_in: int):
    """(label folder, [(pcm, seconds kept)]) of one decoded recording."""
    settings = job.settings
    if place.kind == "noise":
        pcm = _noise_pcm(mono, rate_in, settings)
        return NOISE_DIR, [(pcm, len(pcm) / settings.sample_rate)]
    if place.label == UNKNOWN and len(mono) > settings.clip_seconds * rate_in:
        audio = resample(mono - mono.mean(dtype=np.float64).astype(np.float32), rate_in,
                         settings.sample_rate)  # fmt: skip
        return UNKNOWN, _pieces(audio, job, rel)
    return place.label or "", [shape_clip(mono, rate_in, settings, clip_rng(job.seed, rel))]


def _process(job: _Job, rel: str, place: Placement) -> list[ManifestRow]:
    noise = place.kind == "noise"
    info: dict = {}
    try:
        long = noise or place.label == UNKNOWN
        limit = {"max_seconds": MAX_NOISE_SECONDS} if long else {}
        mono, rate_in, channels_in, duration_in = decode(job.input_dir / rel, **limit)
        info = {"sample_rate_in": rate_in, "channels_in": channels_in, "duration_in": duration_in}
        folder, clips = _clips(job, rel, place, mono, rate_in)
    except AudioError as exc:
        return [_row(rel, place, "rejected", exc.reason, **info)]
    except OSError as exc:
        reason = f"unreadable: {exc.strerror or type(exc).__name__}"
        return [_row(rel, place, "rejected", reason, **info)]
    except Exception as exc:  # a bad recording must never stop the run
        reason = _sanitise(f"error: {type(exc).__name__}: {exc}", job)
        return [_row(rel, place, "rejected", reason, **info)]
    rows = []
    for index, (pcm, duration_out) in enumerate(clips):
        output = output_name(rel, folder)
        if len(clips) > 1:
            output = output.removesuffix(".wav") + f"-p{index:03d}.wav"
        _write_clip(job, output, pcm)
        status = "noise" if noise else "kept"
        rows.append(_row(rel, place, status, output=output, duration_out=duration_out, **info))
    if noise:  # the recording's pieces are also windows of nothing said
        rows += _silence_rows(job, rel, mono, rate_in, info)
    return rows


def _write_clip(job: _Job, output: str, pcm: np.ndarray) -> None:
    target = job.output_dir / output
    target.parent.mkdir(parents=True, exist_ok=True)
    write_wav(target, pcm, job.settings.sample_rate)  # a failed write is the run's error


def _to_pcm(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)


def _silence_rows(job: _Job, rel: str, mono: np.ndarray, rate_in: int, info: dict):
    audio = resample(mono - mono.mean(dtype=np.float64).astype(np.float32), rate_in,
                     job.settings.sample_rate)  # fmt: skip
    place, rows = Placement("recording", SILENCE, SILENCE), []
    samples = job.settings.clip_samples
    for index, piece in enumerate(noise_pieces(audio, samples, job.seed, rel)):
        output = output_name(rel, SILENCE).removesuffix(".wav") + f"-p{index:03d}.wav"
        _write_clip(job, output, _to_pcm(piece))
        rows.append(_row(rel, place, "kept", output=output, **info))
    return rows


def generated_silence(job: _Job, count: int) -> list[ManifestRow]:
    """``count`` generated ``_silence_`` clips (:mod:`kwsops.audio.silence`)."""
    place, rows = Placement("recording", SILENCE, SILENCE), []
    for index in range(count):
        source = GENERATED_SOURCE.format(class_=SILENCE, index=index)
        output = f"{SILENCE}/generated-{index:04d}.wav"
        _write_clip(job, output, _to_pcm(generated_noise(index, job.settings, job.seed)))
        rows.append(_row(source, place, "kept", output=output))
    return rows


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    """Remember the job and pay the first-call costs once per worker process; die with the
    process that started the pool (a killed stage leaves no decoder behind)."""
    global _WORKER_JOB
    parent = multiprocessing.parent_process()
    if parent is not None:
        die_with_parent(parent.pid)
    # Ctrl-C reaches the whole process group: the stage that started the pool stops it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_JOB = job
    rng = np.random.default_rng(0)
    warm = (np.sin(np.arange(8000) * 0.3) * np.hanning(8000)).astype(np.float32)
    shape_clip(warm + 1e-3 * rng.standard_normal(8000).astype(np.float32), 8000, job.settings)


def _prepare(job: _Job, rel: str, place: Placement) -> list[ManifestRow]:
    """The file's rows: decided without decoding (a list, a rejected entry), else processed."""
    row = _check(job.input_dir, rel, place)
    return [row] if row is not None else _process(job, rel, place)


def _prepare_in_worker(item: tuple[str, Placement]) -> list[ManifestRow]:
    assert _WORKER_JOB is not None
    return _prepare(_WORKER_JOB, *item)


def _start_pool(job: _Job, workers: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),  # no fork: callers run threads
        initializer=_init_worker,
        initargs=(job,),
    )
    for _ in range(workers):  # a submit spawns a worker: start them all now
        pool.submit(int)
    return pool


def _close_pool(pool: ProcessPoolExecutor, finished: bool) -> None:
    """Shut the pool down; after an error or a cancel without waiting for the clips in flight.
    Whatever interrupts the shutdown (a cancel landing in it), the workers are killed first:
    a forked task process that exits with its pool still open hangs for ever, because
    multiprocessing's exit closes the pool's queue before the pool's thread can tell the
    workers to stop, and then joins them (seen with luigid gone mid-Preprocess)."""
    try:
        if not finished:
            _kill_workers(pool)
        pool.shutdown(cancel_futures=True)
    except BaseException:
        _kill_workers(pool)
        raise


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    for process in list((pool._processes or {}).values()):  # Python 3.14: pool.kill_workers()
        with contextlib.suppress(OSError):
            process.kill()


def preprocess(
    input_dir: Path,
    output_dir: Path,
    settings: AudioSettings = DEFAULT_SETTINGS,
    *,
    layout: LayoutSettings = DEFAULT_LAYOUT,
    workers: int = 2,
    seed: int = 42,
    progress: ProgressFn = no_progress,
) -> PreprocessSummary:
    """Prepare every recording under ``input_dir`` into the empty folder ``output_dir``.
    Raises :class:`kwsops.audio.layout.LayoutError` for unusable ``layout`` settings."""
    started = time.perf_counter()
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found")
    output_dir.mkdir(parents=True, exist_ok=True)
    job = _Job(input_dir, output_dir, settings, seed)
    found = scan_inputs(input_dir)
    # the workers start (about a second) while the layout is planned; each worker checks its
    # files too (a stat each): the parent's serial part stays the walk and the plan
    pool = _start_pool(job, workers) if workers > 1 and len(found) >= 4 else None
    finished = False
    try:
        plan = plan_layout(found, layout, lambda rel: read_split_list(input_dir, rel))
        todo = [(rel, plan.places[rel]) for rel in found]
        total, rows = len(todo), []
        progress(0, total, "scanned")
        if pool is None:
            results = (_prepare(job, *item) for item in todo)
        else:
            chunk = max(1, min(16, total // (workers * 8)))
            results = pool.map(_prepare_in_worker, todo, chunksize=chunk)
        for done, found in enumerate(results, 1):
            rows += found
            progress(done, total, found[0].source)
        finished = True
    finally:
        if pool is not None:
            _close_pool(pool, finished)
    rows += generated_silence(job, silence_count(rows))
    rows.sort(key=lambda row: (row.source, row.output or ""))
    outputs = [row.output for row in rows if row.output]
    if len(set(outputs)) != len(outputs):
        raise RuntimeError("two inputs mapped to the same output name; rename one of them")
    write_manifest(rows, output_dir / MANIFEST_NAME)
    summary = _summarise(rows, time.perf_counter() - started)
    merged = {label: others for label, others in plan.merged.items() if label in summary.labels}
    return replace(summary, merged_spellings=merged, split_lists=plan.lists)


def silence_count(rows: list[ManifestRow]) -> int:
    """Generated ``_silence_`` clips to add: as many as the median word has (a class about
    the size of a word; the recorded noise pieces come on top)."""
    counts = Counter(row.label for row in rows if row.kept and row.label and is_word(row.label))
    return int(np.median(list(counts.values()))) if counts else 0


def _summarise(rows: list[ManifestRow], seconds: float) -> PreprocessSummary:
    kept = [row for row in rows if row.kept]
    rejected = [row for row in rows if row.status == "rejected"]
    noise = [row for row in rows if row.noise]
    return PreprocessSummary(
        kept=len(kept),
        rejected=len(rejected),
        kept_per_label=dict(sorted(Counter(row.label or "" for row in kept).items())),
        rejected_per_label=dict(sorted(Counter(row.label or "" for row in rejected).items())),
        reasons=dict(Counter(reason_kind(row.reason) for row in rejected).most_common()),
        duration_in=DurationStats.of([r.duration_in for r in rows if r.duration_in is not None]),
        duration_out=DurationStats.of([r.duration_out for r in kept if r.duration_out is not None]),
        seconds=seconds,
        speakers=len({row.speaker for row in kept if row.speaker}),
        noise=len(noise),
        noise_seconds=round(sum(row.duration_out or 0.0 for row in noise), 3),
    )
