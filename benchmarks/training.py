"""Training cost of the default run, ways side by side: folds trained together (stacked, the
default) or one TrainFold task per fold (``--fold-tasks``), each with the default training
precision (``auto``: bfloat16 steps on a CPU with bfloat16 arithmetic) or float32.

    python benchmarks/training.py                          # stacked vs fold-tasks-float32
    python benchmarks/training.py --modes stacked stacked-float32 fold-tasks fold-tasks-float32
    python benchmarks/training.py --workspace DIR          # a workspace with spectrograms
    python benchmarks/training.py --epochs 3 --batch-sizes 32   # a quick look
    python benchmarks/training.py --device cuda            # stacked, in process, on a GPU

CPU (the default): each mode runs the real ``kwsops run --target VersionModels`` in its own
copy of the workspace, its models removed, so everything upstream is up to date and only the
training (and the versioning of the models) runs: Luigi workers, process starts, ClearML and
all. Printed per mode: the training's wall time (from the first training task's start to the
last one's end, read from the run's events), the CPU seconds of the whole run's process tree
(getrusage of the waited-for children, training and ``dvc``/``git``), and per batch size the
accuracy on the held-out test split (unseen speakers: mean of the fold models, and of their
ensemble, scored by the code Validate runs). The modes run one after the other, in the order
given, and each is compared with the last one (by default ``fold-tasks-float32``: the default
run before stacking and bfloat16). The machine may be shared, so compare figures of one
invocation only; ``--repeat N`` runs the modes N times, every other round in reverse order,
and compares the median times (a slower spell of the machine then falls on every mode).

``--device cuda``: trains every batch size's folds stacked in this process on the GPU (no
pipeline around it: the GPU target is the training itself) and prints the wall time per batch
size and in all, after one untimed warm-up epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs
from kwsops.workspace import Workspace

KWSOPS = [sys.executable, "-m", "kwsops.cli"]
MODES = {
    "stacked": [],
    "stacked-float32": ["--precision", "float32"],
    "fold-tasks": ["--fold-tasks"],
    "fold-tasks-float32": ["--fold-tasks", "--precision", "float32"],
}
TRAINING = ("Train", "TrainFold")


def cli(ws: Workspace, *args: str, env: dict | None = None) -> None:
    code = subprocess.call([*KWSOPS, "-C", str(ws.root), *args], stdout=subprocess.DEVNULL,
                           env={**os.environ, **(env or {})})  # fmt: skip
    if code != 0:
        sys.exit(f"`kwsops {' '.join(args)}` failed with exit code {code}")


def demo_workspace(root: Path, per_label: int | None) -> Workspace:
    """The demo recordings through the spectrogram stage (not timed)."""
    ws = Workspace(root)
    subprocess.run([*KWSOPS, "init", str(root)], check=True, stdout=subprocess.DEVNULL)
    cli(ws, "demo-data", "--quiet", *(["--per-label", str(per_label)] if per_label else []))
    cli(ws, "run", "--target", "VersionSpectrograms", "--quiet")
    return ws


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def training_wall(ws: Workspace) -> float:
    events = read_events(list_runs(ws.runs_dir)[0].events).events
    spans = [e["ts"] for e in events if e.get("family") in TRAINING
             and e["event"] in ("task_started", "task_done")]  # fmt: skip
    if not spans:
        sys.exit(f"{ws.root}: the run trained nothing (were the models left in place?)")
    return max(spans) - min(spans)


def held_out(ws: Workspace, batch_size: int) -> tuple[float, float]:
    """(mean accuracy of the fold models, ensemble accuracy) on the test split."""
    from kwsops.compare.evaluation import evaluate_models
    from kwsops.ml.features import load_split

    paths = sorted(ws.batch_dir(batch_size).glob("fold_*/model.safetensors"))
    scores = evaluate_models(paths, load_split(ws.spec_dir, "test"), ws.output_dir, n_boot=10)
    return scores["accuracy"]["mean"], scores["ensemble_accuracy"]["mean"]


def run_mode(source: Workspace, where: Path, mode: str, args: argparse.Namespace) -> dict:
    copy = Workspace(where / mode)
    shutil.rmtree(copy.root, ignore_errors=True)  # an earlier round's copy
    shutil.copytree(source.root, copy.root, symlinks=True)
    shutil.rmtree(copy.models_dir, ignore_errors=True)
    flags = ["--batch-sizes", *map(str, args.batch_sizes), "--epochs", str(args.epochs),
             "--folds", str(args.folds), "--quiet", *MODES[mode]]  # fmt: skip
    cpu = children_cpu()
    started = time.perf_counter()
    cli(copy, "run", "--target", "VersionModels", *flags)
    result = {
        "mode": mode,
        "run_s": time.perf_counter() - started,
        "train_wall_s": training_wall(copy),
        "cpu_s": children_cpu() - cpu,
        "accuracy": {b: held_out(copy, b) for b in args.batch_sizes},
    }
    print(
        f"{mode:<11} training wall {result['train_wall_s']:7.1f} s   run {result['run_s']:7.1f} s"
        f"   run CPU {result['cpu_s']:7.1f} s   held-out acc (folds / ensemble) "
        + "  ".join(f"bs{b} {m:.3f}/{e:.3f}" for b, (m, e) in result["accuracy"].items()),
        flush=True,
    )
    return result


def median_result(runs: list[dict]) -> dict:
    """A mode's figures over rounds: the median time, the mean accuracy."""
    return {
        "mode": runs[0]["mode"],
        "rounds": runs,
        **{key: statistics.median(r[key] for r in runs) for key in ("train_wall_s", "run_s",
                                                                  "cpu_s")},
        "accuracy": {b: tuple(statistics.mean(r["accuracy"][b][i] for r in runs) for i in (0, 1))
                     for b in runs[0]["accuracy"]},
    }  # fmt: skip


def compare(results: list[dict]) -> None:
    base = results[-1]  # every mode against the last one given
    for new in results[:-1]:
        ratio = base["train_wall_s"] / new["train_wall_s"]
        cpu = base["cpu_s"] / new["cpu_s"]
        print(f"{base['mode']} / {new['mode']}: training wall {ratio:.2f}x, run CPU {cpu:.2f}x")
        for b, (mean, ens) in new["accuracy"].items():
            bm, be = base["accuracy"][b]
            print(f"  bs{b}: held-out acc {new['mode']} - {base['mode']}: folds {mean - bm:+.3f}, "
                  f"ensemble {ens - be:+.3f}")  # fmt: skip


def on_gpu(ws: Workspace, args: argparse.Namespace) -> None:
    import torch

    from kwsops.config import TrainSettings
    from kwsops.ml.fold.setup import FoldOptions
    from kwsops.ml.stacked import train_folds

    if not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device")
    print(f"{torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    cuda = FoldOptions(device="cuda")
    with tempfile.TemporaryDirectory() as tmp:
        warm = TrainSettings(batch_size=args.batch_sizes[0], epochs=1, folds=args.folds)
        dirs = {k: Path(tmp) / "warm" / str(k) for k in range(args.folds)}
        train_folds(ws.spec_dir, dirs, warm, options=cuda)  # kernels, caches: not timed
        total = 0.0
        for batch in args.batch_sizes:
            settings = TrainSettings(batch_size=batch, epochs=args.epochs, folds=args.folds)
            dirs = {k: Path(tmp) / str(batch) / str(k) for k in range(args.folds)}
            torch.cuda.synchronize()
            started = time.perf_counter()
            results = train_folds(ws.spec_dir, dirs, settings, options=cuda)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            total += seconds
            mean_val = sum(r.val_acc for r in results) / len(results)
            print(f"bs{batch}: {args.folds} folds stacked on cuda in {seconds:.1f} s "
                  f"(mean best val acc {mean_val:.3f})", flush=True)  # fmt: skip
    print(f"all {len(args.batch_sizes) * args.folds} folds: {total:.1f} s of training on cuda")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, help="a workspace with spectrograms")
    parser.add_argument("--per-label", type=int, help="demo recordings per label (default: all)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--modes", nargs="+", choices=list(MODES),
                        default=["stacked", "fold-tasks-float32"])  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the modes, every other one in reverse order; medians")  # fmt: skip
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kwsops-training-") as tmp:
        ws = Workspace(args.workspace) if args.workspace else None
        if ws is None:
            ws = demo_workspace(Path(tmp) / "demo", args.per_label)
        if not (ws.spec_dir / "train.safetensors").is_file():
            sys.exit(f"{ws.spec_dir}: no spectrograms; run `kwsops run --target "
                     "VersionSpectrograms` there first")  # fmt: skip
        if args.device == "cuda":
            on_gpu(ws, args)
            return
        print(f"batch sizes {args.batch_sizes}, {args.folds} folds, {args.epochs} epochs; "
              f"{len(os.sched_getaffinity(0))} CPU cores; load {os.getloadavg()[0]:.1f}")  # fmt: skip
        rounds = []
        for index in range(args.repeat):  # ABC CBA ...: a slow spell of the machine hits all
            order = args.modes if index % 2 == 0 else args.modes[::-1]
            rounds.append({mode: run_mode(ws, Path(tmp), mode, args) for mode in order})
        results = [median_result([r[mode] for r in rounds]) for mode in args.modes]
        if args.repeat > 1:
            print(f"medians of {args.repeat} rounds:")
            for result in results:
                print(f"  {result['mode']:<18} training wall {result['train_wall_s']:7.1f} s   "
                      f"run CPU {result['cpu_s']:7.1f} s")  # fmt: skip
        compare(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
