"""Cost as the data grows: N clips through the real data stages, measured stage by stage.

    python benchmarks/scale.py --clips 10000                       # data stages + one fold
    python benchmarks/scale.py --clips 1000 --stages data --json scale.json
    python benchmarks/scale.py --clips 60 --seeds DIR --workspace /tmp/ws --keep

Builds a workspace (`kwsops init`) whose data/input holds N one-word clips in Speech
Commands' layout, ``<word>/<speaker>_nohash_<n>.wav`` (16 kHz PCM wav, about N/40 speakers,
the six demo words): perturbed copies of seed recordings (the demo recordings, synthesised
here with eSpeak NG, or ``--seeds DIR``), each speaker with its own speed and pitch (one
varispeed factor), gain and noise, each clip with its own jitter, offset and noise draw.
Two processes write them straight to disk, so 100 000 clips need no more memory than 100.

Then it runs each stage as a user would, as its own process (`luigi --module tasks <Stage>`
from the workspace root: what a stage needs before it is already done), and prints per stage
its wall time, clips per second, CPU seconds (the process and its children), peak memory
(summed RSS of the process tree, sampled; and the largest single process, from the kernel)
and the disk used after it. Disk is counted with `du`, which counts a hard-linked file once
per call: each folder alone, then the workspace's data and the DVC cache together (the DVC
cache links its files where the file system allows) and with the default local remote. For
training: stage ``TrainFold``, one fold of batch 32 for ``--train-epochs`` epochs (one torch
thread, as each of the two workers of a ``--fold-tasks`` run), and stage ``Train``, the five
folds of batch 32 stacked in one task on every core (the default; another seed, so that it
trains every fold rather than taking fold 0 as done): seconds per epoch, per fold-epoch per
1 000 training clips, and the default run estimated from each.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soxr
from measure import PeakMemory  # benchmarks/measure.py, beside this script
from rich.console import Console
from rich.table import Table

from kwsops.audio.clip import decode, resample, write_wav
from kwsops.audio.layout import is_supported
from kwsops.config import THREADS_ENV, TrainSettings
from kwsops.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
CLIPS_PER_SPEAKER = 40
DATA_STAGES = ("VersionInput", "Preprocess", "VersionOutput", "MakeSpectrograms",
               "VersionSpectrograms")  # fmt: skip
TRAIN_STAGES = ("TrainFold", "Train")
STAGES = (*DATA_STAGES, *TRAIN_STAGES)
GROUPS = {"data": DATA_STAGES, "train": TRAIN_STAGES, "all": STAGES}
STACKED_SEED = 7  # Train's seed: not the TrainFold stage's, whose fold 0 would count as done
DEFAULT_BATCH_SIZES = (16, 32, 64)  # luigi.cfg [VersionModels]
BENCH_BATCH = 32
console = Console(width=None if sys.stdout.isatty() else 130)  # piped: no cut figures


# ---- the input set ------------------------------------------------------------------------


def load_seeds(seed_dir: Path) -> dict[str, list[np.ndarray]]:
    """Every readable recording under ``seed_dir`` at 16 kHz mono, by its folder's name."""
    bank: dict[str, list[np.ndarray]] = {}
    for path in sorted(seed_dir.rglob("*")):
        if not path.is_file() or not is_supported(path.name):
            continue
        try:
            mono, rate, _, _ = decode(path)
        except (OSError, ValueError):
            continue
        bank.setdefault(path.parent.name.lower(), []).append(resample(mono, rate, RATE))
    return bank


def speaker_id(index: int, seed: int) -> str:
    return f"{zlib.crc32(f'{seed}:{index}'.encode()):08x}"


_BANK: dict[str, list[np.ndarray]] = {}
_LABELS: list[str] = []


def _init_worker(bank_file: str) -> None:
    with np.load(bank_file) as npz:
        for key in npz.files:
            _BANK.setdefault(key.split("/")[0], []).append(npz[key])
    _LABELS.extend(sorted(_BANK))


def render(task: tuple[int, int, int, str, int]) -> int:
    """Clip ``index`` of speaker ``speaker`` (of ``speakers``) into ``input_dir``; its bytes."""
    index, speaker, speakers, input_dir, seed = task
    voice = np.random.default_rng([seed, 1, speaker])  # the speaker's own voice and phone
    speed, gain_db, snr_db = voice.uniform([0.85, -18.0, 12.0], [1.18, -2.0, 40.0])
    rng = np.random.default_rng([seed, 2, index])
    label = _LABELS[index % len(_LABELS)]
    source = _BANK[label][int(rng.integers(len(_BANK[label])))]
    factor = speed * rng.uniform(0.97, 1.03)  # faster and higher together (varispeed)
    audio = soxr.resample(source, RATE * factor, RATE, quality="LQ").astype(np.float64)
    lead, tail = (rng.uniform(0.0, 0.25, 2) * RATE).astype(int)
    audio = np.concatenate([np.zeros(lead), audio, np.zeros(tail)])
    rms = float(np.sqrt(np.mean(audio**2))) or 1e-3
    audio += rng.standard_normal(audio.size) * rms * 10 ** (-(snr_db + rng.uniform(-3, 3)) / 20)
    audio *= 10 ** ((gain_db + rng.uniform(-3, 3)) / 20) / max(np.abs(audio).max(), 1e-6)
    pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype(np.int16)
    name = f"{speaker_id(speaker, seed)}_nohash_{index % CLIPS_PER_SPEAKER}.wav"
    path = Path(input_dir) / label / name
    write_wav(path, pcm, RATE)
    return path.stat().st_size


def build_inputs(input_dir: Path, clips: int, seeds: dict[str, list[np.ndarray]],
                 scratch: Path, workers: int = 2, seed: int = 42) -> dict:  # fmt: skip
    """N clips into ``input_dir``, streamed by ``workers`` processes; what it cost."""
    labels = sorted(seeds)
    if len(labels) < 2:
        sys.exit(f"scale.py: the seed recordings name {len(labels)} word(s); 2 or more needed")
    bank_file = scratch / "seeds.npz"
    np.savez(bank_file, **{f"{label}/{i}": clip for label in labels
                           for i, clip in enumerate(seeds[label])})  # fmt: skip
    for label in labels:
        (input_dir / label).mkdir(parents=True, exist_ok=True)
    speakers = max(4, round(clips / CLIPS_PER_SPEAKER))
    per_speaker = -(-clips // speakers)  # consecutive clips: every speaker says every word
    tasks = ((i, i // per_speaker, speakers, str(input_dir), seed) for i in range(clips))
    started, total = time.perf_counter(), 0
    context = get_context("spawn")  # no fork: the status spinner's thread may hold a lock
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(str(bank_file),)) as pool:  # fmt: skip
        for size in pool.map(render, tasks, chunksize=256):
            total += size
    seconds = time.perf_counter() - started
    return {"clips": clips, "speakers": min(speakers, -(-clips // per_speaker)),
            "labels": labels, "seconds": seconds, "bytes": total}  # fmt: skip


def seed_recordings(scratch: Path, given: Path | None) -> tuple[Path, str]:
    if given is not None:
        return given, str(given)
    from kwsops.audio.demo_data import generate_demo_data

    folder = scratch / "seeds"
    generate_demo_data(folder, per_label=12, speakers=8, seed=7, workers=2)
    return folder, "demo recordings (6 words x 12, 8 eSpeak NG speakers)"


# ---- measuring a stage ----------------------------------------------------------------------


def child_env(ws: Workspace) -> dict:
    """This checkout's kwsops and tasks, whatever the venv installed; the workspace named."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "KWSOPS_WORKSPACE": str(ws.root)}


def run_measured(command: list[str], ws: Workspace, log: Path, env: dict | None = None) -> dict:
    """Run ``command`` in the workspace: wall, CPU and peak memory of its process tree."""
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ws.root, env={**child_env(ws), **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        with PeakMemory(proc.pid) as memory:
            _, status, usage = os.wait4(proc.pid, 0)  # usage: the child and its waited children
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        sys.exit(f"scale.py: `{' '.join(command[-2:])}` exited {proc.returncode} "
                 f"(log: {log}): {' | '.join(tail)}")  # fmt: skip
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_tree_mib": memory.peak / 2**20,
        "peak_rss_process_mib": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def du_bytes(*paths: Path) -> int:
    """Disk used by the paths together (`du` counts a hard-linked file once per call)."""
    found = [str(p) for p in paths if p.exists()]
    if not found:
        return 0
    out = subprocess.run(["du", "-s", "-c", "-B1", *found], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return int(out.strip().splitlines()[-1].split()[0])


def disk_usage(ws: Workspace) -> dict:
    folders = {
        "input": ws.input_dir,
        "output": ws.output_dir,
        "spec_ds": ws.spec_dir,
        "models": ws.models_dir,
        "dvc_cache": ws.root / ".dvc" / "cache",
        "local_remote": ws.local_remote_dir,
    }
    usage = {name: du_bytes(path) for name, path in folders.items()}
    data = [ws.input_dir, ws.output_dir, ws.spec_dir]
    usage["workspace_and_cache"] = du_bytes(ws.data_dir, folders["dvc_cache"])
    usage["all_three"] = du_bytes(ws.data_dir, folders["dvc_cache"], folders["local_remote"])
    stored = sum(du_bytes(path) for path in data)
    usage["ratio_to_data"] = usage["workspace_and_cache"] / stored if stored else None
    return usage


def train_figures(ws: Workspace, stage: str) -> dict:
    """Figures of the training ``stage`` just run, read from fold 0's files: a stacked epoch's
    ``seconds`` in history.csv is the wall time of all its folds' epochs together."""
    fold = ws.batch_dir(BENCH_BATCH) / "fold_0"
    metrics = json.loads((fold / "metrics.json").read_text())
    with (fold / "history.csv").open(newline="") as handle:
        epoch_seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    timed = epoch_seconds[1:] or epoch_seconds  # the first epoch also warms torch up
    per_epoch = sum(timed) / len(timed)  # training and validation, no setup
    stacked = max(1, int(metrics.get("stacked_folds", 1)))
    clips = metrics["n_train"] + metrics["n_val"]
    defaults = TrainSettings()
    default_epochs = defaults.epochs
    fold_epochs = defaults.folds * len(DEFAULT_BATCH_SIZES) * default_epochs
    # a stacked task uses every core; one fold task one thread, two workers at once
    estimated_wall = per_epoch * fold_epochs / (stacked if stacked > 1 else 2)
    return {
        "stage": stage,
        "stacked_folds": stacked,
        "precision": metrics.get("precision", "float32"),
        "train_clips": metrics["n_train"],
        "val_clips": metrics["n_val"],
        "epochs": len(epoch_seconds),
        "fold_seconds": metrics["seconds"],
        "s_per_epoch": per_epoch,
        "first_epoch_s": epoch_seconds[0],
        "s_per_epoch_per_1000_clips": per_epoch * 1000 / clips / stacked,  # per fold-epoch
        "default_run": {
            "folds": defaults.folds,
            "batch_sizes": list(DEFAULT_BATCH_SIZES),
            "epochs": default_epochs,
            "fold_epochs": fold_epochs,
            "estimated_task_s": per_epoch * fold_epochs / stacked,
            "estimated_wall_s": estimated_wall,
        },
        "device": metrics.get("device"),
        "threads": metrics.get("threads"),
    }


def stage_command(stage: str, epochs: int) -> list[str]:
    command = [sys.executable, "-m", "luigi", "--module", "tasks", stage]
    if stage == "TrainFold":
        command += ["--batch-size", str(BENCH_BATCH), "--fold", "0", "--epochs", str(epochs)]
    elif stage == "Train":
        command += ["--batch-size", str(BENCH_BATCH), "--epochs", str(epochs), "--seed",
                    str(STACKED_SEED), "--stacked", "true"]  # fmt: skip
    return command


def selected_stages(names: list[str]) -> list[str]:
    chosen: set[str] = set()
    for name in names:
        chosen |= set(GROUPS.get(name, (name,)))
    unknown = chosen - set(STAGES)
    if unknown:
        sys.exit(f"scale.py: unknown stage {sorted(unknown)[0]!r}; choose from "
                 f"{', '.join([*GROUPS, *STAGES])}")  # fmt: skip
    return [stage for stage in STAGES if stage in chosen]


# ---- the report ---------------------------------------------------------------------------


def gib(n: int) -> str:
    return f"{n / 2**30:.2f}"


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def print_report(result: dict) -> None:
    clips = result["input"]["clips"]
    table = Table(title=f"{clips:,} clips, {result['cpus']} CPUs", title_justify="left")
    columns = ("stage", "wall s", "clips/s", "CPU s", "peak RSS tree MiB",
               "peak RSS 1 proc MiB", "ws+cache MiB", "+remote MiB")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right")
    generated = result["input"]
    table.add_row("generate input", f"{generated['seconds']:.1f}",
                  f"{clips / generated['seconds']:.0f}", "", "", "", "", "")  # fmt: skip
    for row in result["stages"]:
        disk = row["disk"]
        table.add_row(
            row["stage"],
            f"{row['wall_s']:.1f}",
            f"{row['clips_per_s']:.0f}",
            f"{row['cpu_s']:.1f}",
            f"{row['peak_rss_tree_mib']:.0f}",
            f"{row['peak_rss_process_mib']:.0f}",
            mib(disk["workspace_and_cache"]),
            mib(disk["all_three"]),
        )
    console.print(table)
    disk = result["stages"][-1]["disk"] if result["stages"] else None
    if disk:
        parts = ", ".join(f"{name} {mib(disk[name])}" for name in
                          ("input", "output", "spec_ds", "models", "dvc_cache", "local_remote"))  # fmt: skip
        ratio = disk["ratio_to_data"]
        console.print(f"disk (MiB, each alone): {parts}", soft_wrap=True)
        console.print(
            f"workspace + DVC cache {mib(disk['workspace_and_cache'])} MiB = "
            f"{ratio:.2f} x (input + output + spec_ds); cache.type {result['cache_type']}; "
            f"with the local remote {mib(disk['all_three'])} MiB",
            soft_wrap=True,
        )
    for train in result.get("train") or []:
        run = train["default_run"]
        how = (
            f"{train['stacked_folds']} folds stacked, {train['threads']} lanes"
            if train["stacked_folds"] > 1
            else f"fold 0, {train['threads']} threads"
        )
        console.print(
            f"{train['stage']} (batch {BENCH_BATCH}, {how}, {train['precision']}, "
            f"{train['train_clips']} train + {train['val_clips']} val clips a fold, "
            f"{train['device']}): {train['s_per_epoch']:.1f} s/epoch = "
            f"{train['s_per_epoch_per_1000_clips']:.2f} s per fold-epoch per 1 000 clips; "
            f"default run {run['folds']} folds x {len(run['batch_sizes'])} batch sizes x "
            f"{run['epochs']} epochs (early stopping may end sooner): about "
            f"{run['estimated_wall_s'] / 3600:.1f} h on this machine",
            soft_wrap=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, required=True, help="clips in data/input")
    parser.add_argument("--workspace", type=Path, help="build it here (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workspace afterwards")
    parser.add_argument("--stages", nargs="+", default=["all"],
                        help=f"stages or groups: {', '.join([*GROUPS, *STAGES])}")  # fmt: skip
    parser.add_argument(
        "--train-epochs",
        type=int,
        default=2,
        help="epochs of the timed fold (the first, warming up, is not counted)",
    )
    parser.add_argument("--train-threads", type=int, default=1,
                        help="torch threads (the default run: two folds at once, one each)")  # fmt: skip
    parser.add_argument("--seeds", type=Path, help="recordings to perturb (default: demo ones)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.clips < 24:
        sys.exit("scale.py: --clips must be 24 or more (every word needs a test clip and folds)")
    stages = selected_stages(args.stages)
    root = args.workspace or Path(tempfile.mkdtemp(prefix="kwsops-scale-ws-"))
    if root.exists() and any(root.iterdir()):
        sys.exit(f"scale.py: {root} is not empty; name a new or empty folder")
    ws = Workspace(root.resolve())
    log = ws.state_dir / "scale-stages.log"  # .kwsops/: git-ignored local state
    scratch = Path(tempfile.mkdtemp(prefix="kwsops-scale-"))  # the seeds: always removed
    done = False
    try:
        with console.status("kwsops init"):
            subprocess.run([sys.executable, "-m", "kwsops.cli", "init", str(ws.root)],
                           env=child_env(ws), check=True, capture_output=True)  # fmt: skip
        with console.status("seed recordings"):
            seed_dir, seed_source = seed_recordings(scratch, args.seeds)
            seeds = load_seeds(seed_dir)
        with console.status(f"writing {args.clips:,} clips"):
            generated = build_inputs(ws.input_dir, args.clips, seeds, scratch)
        console.print(
            f"input: {args.clips:,} clips ({gib(generated['bytes'])} GiB of wav), "
            f"{generated['speakers']} speakers, {len(generated['labels'])} words, from "
            f"{seed_source}; written in {generated['seconds']:.1f} s",
            soft_wrap=True,
        )
        rows, trained = [], []
        for stage in stages:
            with console.status(f"{stage} ({args.clips:,} clips)"):
                threads = {THREADS_ENV: str(args.train_threads)} if stage == "TrainFold" else {}
                command = stage_command(stage, args.train_epochs)
                measured = run_measured(command, ws, log, threads)
            row = {"stage": stage, **measured, "clips_per_s": args.clips / measured["wall_s"],
                   "disk": disk_usage(ws)}  # fmt: skip
            rows.append(row)
            if stage in TRAIN_STAGES:  # before the next one writes the same fold folder
                trained.append(train_figures(ws, stage))
            console.print(f"{stage}: {row['wall_s']:.1f} s", highlight=False)
        from kwsops.versioning.dvc_config import read_config

        result = {
            "clips": args.clips,
            "cpus": os.cpu_count(),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip(),  # fmt: skip
            "cache_type": ",".join(read_config(ws.root)["cache"].get("type") or ["default"]),
            "input": generated,
            "stages": rows,
            "train": trained or None,
        }
        print_report(result)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        done = True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep or not done:  # a failed stage: its log is in the workspace
            console.print(f"workspace kept: {ws.root} (stage log: {log})", soft_wrap=True)
        else:
            shutil.rmtree(ws.root, ignore_errors=True)


if __name__ == "__main__":
    main()
