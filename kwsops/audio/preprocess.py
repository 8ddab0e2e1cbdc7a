"""The Preprocess stage: every raw recording becomes a fixed-length clip or a manifest reason.

``preprocess`` writes ``<output_dir>/<Label>/<name>.wav`` and ``<output_dir>/manifest.csv``
(docs/ARCHITECTURE.md). It never fails on a bad recording: each one gets a one-line reason.
Files are shared out to a process pool; every clip depends only on its file, the settings and
the seed, so the output bytes do not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kwsops.audio.clip import DEFAULT_SETTINGS, AudioError, clip_rng, decode, shape_clip, write_wav
from kwsops.audio.layout import is_supported, label_and_speaker
from kwsops.audio.manifest import (
    MANIFEST_NAME,
    ManifestRow,
    reason_kind,
    write_manifest,
)
from kwsops.config import AudioSettings
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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Job:
    input_dir: Path
    output_dir: Path
    settings: AudioSettings
    seed: int


def scan_inputs(input_dir: Path) -> list[str]:
    """Every non-hidden entry under ``input_dir`` but folders (symlinked folders included, not
    followed), as sorted posix paths relative to it. Nothing is opened (:mod:`kwsops.entries`)."""
    return sorted(entry.rel for entry in walk(input_dir, hidden=False))


def output_name(rel: str, label: str) -> str:
    """``<Label>/<stem>-<hash of the source path>.wav``: unique per source, speaker prefix kept."""
    stem = re.sub(r"[^\w.\-]+", "_", Path(rel).stem)[:80] or "clip"
    tag = hashlib.sha256(rel.encode("utf-8")).hexdigest()[:10]
    return f"{label}/{stem}-{tag}.wav"


def _check(input_dir: Path, rel: str) -> ManifestRow | None:
    """The rejection decided without decoding, or None when the file goes to a worker."""
    label, speaker = label_and_speaker(rel)
    suffix = Path(rel).suffix.lower()
    entry = classify(input_dir / rel, rel)  # only a regular file (or a link to one) is opened
    reason = ""
    if not entry.readable:
        reason = entry.reason
    elif not is_supported(rel):
        reason = f"unsupported type {suffix}" if suffix else "unsupported type (no extension)"
    elif label is None:
        reason = "no label folder"
    return ManifestRow(rel, label, speaker, "rejected", reason) if reason else None


def _sanitise(message: str, job: _Job) -> str:
    for root in (job.input_dir, job.output_dir):
        message = message.replace(f"{root}{os.sep}", "").replace(str(root), ".")
    return one_line(message)


def _process(job: _Job, rel: str) -> ManifestRow:
    label, speaker = label_and_speaker(rel)
    info: dict = {}
    try:
        mono, rate_in, channels_in, duration_in = decode(job.input_dir / rel)
        info = {"sample_rate_in": rate_in, "channels_in": channels_in, "duration_in": duration_in}
        pcm, duration_out = shape_clip(mono, rate_in, job.settings, clip_rng(job.seed, rel))
    except AudioError as exc:
        return ManifestRow(rel, label, speaker, "rejected", exc.reason, **info)
    except OSError as exc:
        reason = f"unreadable: {exc.strerror or type(exc).__name__}"
        return ManifestRow(rel, label, speaker, "rejected", reason, **info)
    except Exception as exc:  # a bad recording must never stop the run
        reason = _sanitise(f"error: {type(exc).__name__}: {exc}", job)
        return ManifestRow(rel, label, speaker, "rejected", reason, **info)
    output = output_name(rel, label or "")
    target = job.output_dir / output
    target.parent.mkdir(parents=True, exist_ok=True)
    write_wav(target, pcm, job.settings.sample_rate)  # a failed write is the run's error
    return ManifestRow(rel, label, speaker, "kept", "", output, duration_out=duration_out, **info)


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    """Remember the job and pay the first-call costs once per worker process; die with the
    process that started the pool (a killed stage leaves no decoder behind)."""
    global _WORKER_JOB
    parent = multiprocessing.parent_process()
    if parent is not None:
        die_with_parent(parent.pid)
    _WORKER_JOB = job
    rng = np.random.default_rng(0)
    warm = (np.sin(np.arange(8000) * 0.3) * np.hanning(8000)).astype(np.float32)
    shape_clip(warm + 1e-3 * rng.standard_normal(8000).astype(np.float32), 8000, job.settings)


def _process_in_worker(rel: str) -> ManifestRow:
    assert _WORKER_JOB is not None
    return _process(_WORKER_JOB, rel)


def preprocess(
    input_dir: Path,
    output_dir: Path,
    settings: AudioSettings = DEFAULT_SETTINGS,
    *,
    workers: int = 2,
    seed: int = 42,
    progress: ProgressFn = no_progress,
) -> PreprocessSummary:
    """Prepare every recording under ``input_dir`` into the empty folder ``output_dir``."""
    started = time.perf_counter()
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise FileNotFoundError(f"{input_dir}: input folder not found")
    output_dir.mkdir(parents=True, exist_ok=True)
    job = _Job(input_dir, output_dir, settings, seed)
    checked = [(rel, _check(input_dir, rel)) for rel in scan_inputs(input_dir)]
    rows = [row for _, row in checked if row is not None]
    todo = [rel for rel, row in checked if row is None]
    total = len(checked)
    progress(len(rows), total, "scanned")
    if workers <= 1 or len(todo) < 4:  # a pool costs about a second to start
        results = (_process(job, rel) for rel in todo)
        pool = None
    else:
        chunk = max(1, min(16, len(todo) // (workers * 8)))
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),  # no fork: callers run threads
            initializer=_init_worker,
            initargs=(job,),
        )
        results = pool.map(_process_in_worker, todo, chunksize=chunk)
    try:
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
    return _summarise(rows, time.perf_counter() - started)


def _summarise(rows: list[ManifestRow], seconds: float) -> PreprocessSummary:
    kept = [row for row in rows if row.kept]
    rejected = [row for row in rows if not row.kept]
    return PreprocessSummary(
        kept=len(kept),
        rejected=len(rejected),
        kept_per_label=dict(sorted(Counter(row.label or "" for row in kept).items())),
        rejected_per_label=dict(sorted(Counter(row.label or "" for row in rejected).items())),
        reasons=dict(Counter(reason_kind(row.reason) for row in rejected).most_common()),
        duration_in=DurationStats.of([r.duration_in for r in rows if r.duration_in is not None]),
        duration_out=DurationStats.of([r.duration_out for r in kept if r.duration_out is not None]),
        seconds=seconds,
    )
