"""The Preprocess stage: every raw recording becomes a fixed-length clip or a manifest reason.

``preprocess`` writes ``<output_dir>/<Label>/<name>.wav``, the background-noise recordings
whole at the clip sample rate in ``<output_dir>/_noise/``, and ``<output_dir>/manifest.csv``
(docs/ARCHITECTURE.md). Which file is what comes from :mod:`kwsops.audio.layout`. It never
fails on a bad recording: each one gets a one-line reason. Files are shared out to a process
pool; every clip depends only on its file, the settings and the seed, so the output bytes do
not depend on the number of workers.
"""

from __future__ import annotations

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
from kwsops.config import AudioSettings, LayoutSettings
from kwsops.entries import classify, walk
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


def _process(job: _Job, rel: str, place: Placement) -> ManifestRow:
    noise = place.kind == "noise"
    info: dict = {}
    try:
        limit = {"max_seconds": MAX_NOISE_SECONDS} if noise else {}
        mono, rate_in, channels_in, duration_in = decode(job.input_dir / rel, **limit)
        info = {"sample_rate_in": rate_in, "channels_in": channels_in, "duration_in": duration_in}
        if noise:
            pcm = _noise_pcm(mono, rate_in, job.settings)
            duration_out = len(pcm) / job.settings.sample_rate
        else:
            pcm, duration_out = shape_clip(mono, rate_in, job.settings, clip_rng(job.seed, rel))
    except AudioError as exc:
        return _row(rel, place, "rejected", exc.reason, **info)
    except OSError as exc:
        return _row(
            rel, place, "rejected", f"unreadable: {exc.strerror or type(exc).__name__}", **info
        )
    except Exception as exc:  # a bad recording must never stop the run
        reason = _sanitise(f"error: {type(exc).__name__}: {exc}", job)
        return _row(rel, place, "rejected", reason, **info)
    output = output_name(rel, NOISE_DIR if noise else place.label or "")
    target = job.output_dir / output
    target.parent.mkdir(parents=True, exist_ok=True)
    write_wav(target, pcm, job.settings.sample_rate)  # a failed write is the run's error
    status = "noise" if noise else "kept"
    return _row(rel, place, status, output=output, duration_out=duration_out, **info)


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


def _prepare(job: _Job, rel: str, place: Placement) -> ManifestRow:
    """The file's row: decided without decoding (a list, a rejected entry), else processed."""
    row = _check(job.input_dir, rel, place)
    return row if row is not None else _process(job, rel, place)


def _prepare_in_worker(item: tuple[str, Placement]) -> ManifestRow:
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
        for row in results:
            rows.append(row)
            progress(len(rows), total, row.source)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    rows.sort(key=lambda row: row.source)
    outputs = [row.output for row in rows if row.output]
    if len(set(outputs)) != len(outputs):
        raise RuntimeError("two inputs mapped to the same output name; rename one of them")
    write_manifest(rows, output_dir / MANIFEST_NAME)
    summary = _summarise(rows, time.perf_counter() - started)
    merged = {label: others for label, others in plan.merged.items() if label in summary.labels}
    return replace(summary, merged_spellings=merged, split_lists=plan.lists)


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
