"""Benchmark the Preprocess stage against the bare floor of decoding and resampling.

    .venv/bin/python benchmarks/preprocess.py [--input DIR] [--workers 2] [--repeat 1]

Without ``--input`` a demo-sized set (864 files) is built in a temp folder: with
``kwsops.audio.demo_data.generate_demo_data`` when it is there, else synthesised here. Every phase
reads the same files; peak memory is the largest summed RSS of this process and its workers.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
from rich.console import Console
from rich.table import Table

from kwsops.audio.clip import decode, resample
from kwsops.audio.layout import is_supported
from kwsops.audio.preprocess import PreprocessSummary, preprocess, scan_inputs
from kwsops.config import DEMO_LABELS, AudioSettings

FORMATS = (  # (format, subtype, extension, sample rates)
    ("WAV", "PCM_16", "wav", (8000, 16000, 44100, 48000)),
    ("WAV", "FLOAT", "wav", (16000, 48000)),
    ("FLAC", "PCM_16", "flac", (16000, 44100)),
    ("OGG", "VORBIS", "ogg", (22050, 44100)),
    ("OGG", "OPUS", "opus", (16000, 48000)),
    ("MP3", "MPEG_LAYER_III", "mp3", (22050, 44100)),
)


def synthesise(root: Path, per_label: int = 144, seed: int = 42) -> None:
    """A demo-like set without eSpeak: a harmonic 'word' in noise, mixed containers."""
    rng = np.random.default_rng(seed)
    for label_index, label in enumerate(DEMO_LABELS):
        for index in range(per_label):
            fmt, subtype, ext, rates = FORMATS[rng.integers(len(FORMATS))]
            rate = int(rng.choice(rates))
            n, lead, tail = (
                round(s * rate) for s in rng.uniform([0.3, 0.05, 0.05], [0.9, 0.7, 0.7])
            )
            t = np.arange(n) / rate
            f0 = 100 + 20 * label_index + rng.uniform(-15, 15)
            phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.3 * t)) / rate
            word = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.hanning(n)
            audio = np.concatenate([np.zeros(lead), word, np.zeros(tail)])
            audio += (
                rng.standard_normal(audio.size)
                * np.abs(word).max()
                * 10 ** (-rng.uniform(15, 40) / 20)
            )
            audio *= 10 ** (-rng.uniform(1, 25) / 20) / np.abs(audio).max()
            if rng.random() < 0.25:
                audio = np.stack([audio, 0.8 * audio], axis=1)
            folder = f"Whatsapp/{label}" if rng.random() < 0.15 else label
            path = root / folder / f"spk{index % 16:02d}__{label}_{index:03d}.{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, audio.astype(np.float32), rate, format=fmt, subtype=subtype)


def build_inputs(root: Path, synthetic: bool = False) -> str:
    try:
        if synthetic:
            raise ImportError
        from kwsops.audio.demo_data import generate_demo_data
    except ImportError:
        synthesise(root)
        return "synthesised here"
    generate_demo_data(root, workers=2)
    return "kwsops.audio.demo_data.generate_demo_data"


def floor_one(path: str) -> int:
    """The least any preprocessing must do: decode and resample to 16 kHz."""
    mono, rate, _, _ = decode(path)
    return len(resample(mono, rate, AudioSettings().sample_rate))


def _warm() -> None:
    resample(np.zeros(4410, np.float32), 44100, 16000)


def floor_pool(paths: list[str], workers: int) -> None:
    chunk = max(1, min(16, len(paths) // (workers * 8)))  # as preprocess does
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_warm) as pool:
        for _ in pool.map(floor_one, paths, chunksize=chunk):
            pass


class PeakMemory:
    """Largest summed RSS of this process and its children while the block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time of this process plus its finished children (pool workers once shut down)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(run: Callable[[], object], repeat: int) -> tuple[float, float, int]:
    """Best wall time, CPU time of that run, and peak memory over ``repeat`` runs."""
    best, cpu, peak = float("inf"), 0.0, 0
    for _ in range(repeat):
        with PeakMemory() as memory:
            started, cpu_started = time.perf_counter(), cpu_seconds()
            run()
            wall = time.perf_counter() - started
        if wall < best:
            best, cpu = wall, cpu_seconds() - cpu_started
        peak = max(peak, memory.peak)
    return best, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, help="an existing input folder (default: build one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--synthetic", action="store_true", help="skip kwsops.audio.demo_data")
    parser.add_argument("--repeat", type=int, default=1, help="runs per phase; the best counts")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 110)
    with tempfile.TemporaryDirectory(prefix="kwsops-bench-") as scratch:
        source = "given"
        input_dir = args.input
        if input_dir is None:
            input_dir = Path(scratch) / "input"
            with console.status("building the input set"):
                started = time.perf_counter()
                source = build_inputs(input_dir, args.synthetic)
            console.print(f"input set: {source}, {time.perf_counter() - started:.1f} s")
        paths = [str(input_dir / rel) for rel in scan_inputs(input_dir) if is_supported(rel)]
        summaries: list[PreprocessSummary] = []

        def run_preprocess() -> None:
            out = Path(scratch) / f"out{len(summaries)}"
            summaries.append(preprocess(input_dir, out, workers=args.workers))

        phases = [
            ("floor: decode + resample, 1 process", lambda: [floor_one(p) for p in paths]),
            (
                f"floor: decode + resample, {args.workers} workers",
                lambda: floor_pool(paths, args.workers),
            ),
            (f"preprocess, {args.workers} workers", run_preprocess),
        ]
        results = []
        for name, run in phases:
            with console.status(name):
                results.append((name, *measure(run, args.repeat)))
    summary = summaries[-1]
    pool_floor, cpu_floor = results[1][1], results[0][2]
    table = Table(title=f"Preprocess benchmark: {len(paths)} files, {psutil.cpu_count()} CPUs")
    columns = ("phase", "seconds", "files/s", "x pool floor", "CPU ms/file", "x CPU floor")
    for column in (*columns, "peak RSS (MiB)"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for name, seconds, cpu, peak in results:
        table.add_row(
            name,
            f"{seconds:.2f}",
            f"{len(paths) / seconds:.0f}",
            f"{seconds / pool_floor:.2f}",
            f"{1000 * cpu / len(paths):.2f}",
            f"{cpu / cpu_floor:.2f}",
            f"{peak / 2**20:.0f}",
        )
    console.print(table)
    console.print(
        f"load average at the end: {psutil.getloadavg()[0]:.1f} (other work shares the CPUs)"
    )
    console.print(
        f"kept {summary.kept}, rejected {summary.rejected} {summary.reasons or ''}; "
        f"input {summary.duration_in.mean:.2f} s mean, kept word {summary.duration_out.mean:.2f} s mean"
    )


if __name__ == "__main__":
    main()
