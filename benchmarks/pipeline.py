"""The default pipeline on the demo data, measured: what issue 7 asks for.

    python benchmarks/pipeline.py                 # default run: ~864 clips, bs 16/32/64, 5 folds
    python benchmarks/pipeline.py --ablate        # then retrain with each augmentation off in turn
    python benchmarks/pipeline.py --ablate-only --workspace DIR   # ablation on a finished run
    python benchmarks/pipeline.py --per-label 40 --speakers 8    # a quicker, smaller look
    python benchmarks/pipeline.py --loso-only --workspace DIR    # leave-one-speaker-out alone

Prints wall time per stage, the whole run from raw files to the report, the no-op rerun, the
accuracy on held-out speakers per revision and of the fold ensemble, inference time per clip on
one CPU core, the parameter count and peak memory of the run's process tree. The ablation
trains one batch size's folds on the same spectrograms with one measure switched off and
scores them on the same unseen-speaker test clips, side by side with everything on.

Leave-one-speaker-out (on by default, ``--no-loso`` skips it): for each demo speaker, one model
trained with the default settings on every other speaker's clips (train and test split pooled;
fold 0 of the default folds, as each pipeline fold model is trained) and scored on that
speaker's clips alone. It prints every speaker's accuracy, the mean and the worst speaker: one
model per speaker, so it costs about as much as one batch size of the default run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import PeakMemory  # benchmarks/measure.py, beside this script
from rich.console import Console
from rich.table import Table

from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs
from kwsops.runs.state import RunState
from kwsops.workspace import Workspace

console = Console(width=None if sys.stdout.isatty() else 110)  # piped: no cut figures
KWSOPS = [sys.executable, "-m", "kwsops.cli"]


def timed_cli(ws: Workspace, *args: str) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen([*KWSOPS, "-C", str(ws.root), *args], stdout=subprocess.DEVNULL)
    with PeakMemory(proc.pid) as memory:
        code = proc.wait()
    if code != 0:
        sys.exit(f"`kwsops {' '.join(args)}` failed with exit code {code}")
    return time.perf_counter() - started, memory.peak


def busy_wall(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the spans ran (their union, not first-to-last: the
    three short Train collectors finish minutes apart)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def stage_table(ws: Workspace, total: float, peak: int) -> None:
    state = RunState().apply_all(read_events(list_runs(ws.runs_dir)[0].events).events)
    families: dict[str, list] = {}
    for task in state.ordered():
        families.setdefault(task.family, []).append(task)
    table = Table(title="default run, raw files to report", title_justify="left")
    for column in ("stage", "tasks", "wall s (any running)", "task-seconds"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for family, tasks in families.items():
        spans = [(t.started, t.finished) for t in tasks if t.started and t.finished]
        wall = busy_wall(spans)
        busy = sum(t.duration or 0.0 for t in tasks)
        table.add_row(family, str(len(tasks)), f"{wall:.1f}", f"{busy:.1f}")
    table.add_row("[bold]whole run[/]", "", f"[bold]{total:.1f}[/]", "")
    console.print(table)
    console.print(f"peak memory of the run's process tree: {peak / 2**20:.0f} MiB")


def accuracy_table(ws: Workspace) -> dict:
    report = json.loads(ws.comparison_report.with_suffix(".json").read_text())
    table = Table(title="accuracy on held-out speakers (test split)", title_justify="left")
    table.add_column("revision", no_wrap=True)
    for column in ("mean fold acc (95 % CI)", "ensemble acc", "ms/clip 1 core", "parameters"):
        table.add_column(column, justify="right")
    for rev in report["revisions"]:
        acc, ens = rev["accuracy"], rev["ensemble_accuracy"]
        table.add_row(
            rev["spec"],
            f"{acc['mean']:.3f} ({acc['low']:.3f}-{acc['high']:.3f})",
            f"{ens['mean']:.3f}",
            f"{rev['latency_ms']:.2f}",
            f"{rev['parameters']:,}",
        )
    console.print(table)
    test = report.get("test", {})
    console.print(f"test split: {test.get('clips')} clips from speakers never used in training")
    return report


def ablate(
    ws: Workspace, batch_size: int, folds: int, seeds: int = 1, measures: list[str] | None = None
) -> None:
    """Retrain `batch_size` with each augmentation off in turn; same spectrograms and test.

    Folds train as the pipeline trains them: two processes of one thread each, so "everything
    on" reproduces the pipeline's own `batch_<batch_size>` models. Two figures per variant: the
    test split (108 clips, 2 speakers: one clip is ~1 %) and the cross-validation folds pooled
    (every training clip scored once by the fold that held its speaker out: ~750 clips, 14
    speakers), the steadier of the two.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from kwsops.compare.evaluation import evaluate_models
    from kwsops.config import TrainSettings
    from kwsops.ml.augment import AugmentSettings
    from kwsops.ml.features import load_split
    from kwsops.ml.fold.setup import FoldOptions
    from kwsops.ml.training import train_fold

    test = load_split(ws.spec_dir, "test")
    full = AugmentSettings()
    variants = [("everything on", full)] + [
        (f"no {n}", full.without(n)) for n in full.enabled if not measures or n in measures
    ]
    if not measures:
        variants.append(("no augmentation at all", AugmentSettings.none()))
    seed_list = [42 + k for k in range(seeds)]
    table = Table(
        title=f"ablation: batch {batch_size}, {folds} folds, unseen speakers, "
        f"mean over seeds {', '.join(map(str, seed_list))}",
        title_justify="left",
    )
    columns = ("variant", "test acc", "test ensemble", "Δ test", "CV acc", "Δ CV", "train s")
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    baseline: tuple[float, float] | None = None
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that ran OpenMP
    with tempfile.TemporaryDirectory() as scratch, ProcessPoolExecutor(2, spawn) as pool:
        for name, augment in variants:
            started = time.perf_counter()
            jobs: dict[int, list] = {}
            for seed in seed_list:  # every fold of every seed queued at once: both cores busy
                settings = TrainSettings(batch_size=batch_size, folds=folds, seed=seed)
                for fold in range(folds):
                    out = Path(scratch) / name.replace(" ", "_") / f"seed_{seed}" / f"fold_{fold}"
                    job = pool.submit(
                        train_fold,
                        ws.spec_dir,
                        out,
                        settings,
                        fold,
                        options=FoldOptions(augment=augment),
                        threads=1,
                    )
                    jobs.setdefault(seed, []).append(job)
            figures = []
            for seed in seed_list:
                results = [job.result() for job in jobs[seed]]
                scores = evaluate_models([r.model_path for r in results], test, ws.output_dir)
                cv = sum(r.val_acc * r.n_val for r in results) / sum(r.n_val for r in results)
                figures.append(
                    (scores["accuracy"]["mean"], scores["ensemble_accuracy"]["mean"], cv)
                )
            seconds = time.perf_counter() - started
            acc, ens, cv = (statistics.fmean(column) for column in zip(*figures, strict=True))
            baseline = baseline or (acc, cv)
            table.add_row(
                name,
                f"{acc:.3f}",
                f"{ens:.3f}",
                f"{acc - baseline[0]:+.3f}",
                f"{cv:.3f}",
                f"{cv - baseline[1]:+.3f}",
                f"{seconds:.0f}",
            )
            per_seed = "; ".join(f"{a:.3f}/{c:.3f}" for a, _, c in figures)
            console.print(
                f"  {name}: test {acc:.3f} (ensemble {ens:.3f}), CV {cv:.3f} ({seconds:.0f} s)"
                + (f"  per seed test/CV: {per_seed}" if seeds > 1 else "")
            )
    console.print(table)
    n_cv = sum(r.n_val for r in results)
    console.print(
        f"test: {len(test)} clips; CV: {n_cv} clips, each scored by the fold holding it out"
    )


def _select(split, index: list[int]):
    """The clips ``index`` of a split held in memory."""
    from dataclasses import replace

    import torch

    at = torch.tensor(index, dtype=torch.long)
    return replace(
        split,
        features=split.features[at],
        labels=split.labels[at],
        ids=[split.ids[i] for i in index],
        speakers=[split.speakers[i] for i in index],
    )


def _pooled(ws: Workspace):
    """Train and test split of the finished run as one split."""
    from dataclasses import replace

    import torch

    from kwsops.ml.features import load_split

    train, test = load_split(ws.spec_dir, "train"), load_split(ws.spec_dir, "test")
    return replace(
        train,
        features=torch.cat([train.features[:], test.features[:]]),  # the demo's: small
        labels=torch.cat([train.labels, test.labels]),
        ids=train.ids + test.ids,
        speakers=train.speakers + test.speakers,
    )


def leave_one_speaker_out(ws: Workspace, batch_size: int) -> dict[str, tuple[int, float]]:
    """Speaker -> (clips, accuracy of the model trained without them); worst printed last."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from kwsops.compare.evaluation import evaluate_models
    from kwsops.config import TrainSettings
    from kwsops.ml.fold.setup import FoldOptions
    from kwsops.ml.training import train_fold

    pool = _pooled(ws)
    speakers = sorted({s for s in pool.speakers if s})
    if len(speakers) < 3:
        sys.exit(f"leave-one-speaker-out needs named speakers; found {len(speakers)}")
    settings = TrainSettings(batch_size=batch_size)
    started = time.perf_counter()
    results: dict[str, tuple[int, float]] = {}
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that ran OpenMP
    with tempfile.TemporaryDirectory() as scratch, ProcessPoolExecutor(2, spawn) as workers:
        jobs = {}
        for speaker in speakers:
            others = [i for i, s in enumerate(pool.speakers) if s != speaker]
            out = Path(scratch) / speaker
            jobs[speaker] = workers.submit(
                train_fold,
                ws.spec_dir,
                out,
                settings,
                0,
                threads=1,
                options=FoldOptions(data=_select(pool, others)),
            )
        for speaker in speakers:
            model = jobs[speaker].result().model_path
            held = _select(pool, [i for i, s in enumerate(pool.speakers) if s == speaker])
            scores = evaluate_models([model], held, ws.output_dir, n_boot=10)
            results[speaker] = (len(held), scores["accuracy"]["mean"])
            console.print(f"  held out {speaker}: {results[speaker][1]:.3f} on {len(held)} clips")
    seconds = time.perf_counter() - started
    table = Table(
        title=f"leave-one-speaker-out: batch {batch_size}, default settings, one model per "
        f"speaker ({seconds / 60:.1f} min)",
        title_justify="left",
    )
    for column in ("held-out speaker", "clips", "accuracy"):
        table.add_column(column, justify="left" if column.startswith("held") else "right")
    ordered = sorted(results.items(), key=lambda item: (item[1][1], item[0]))
    for speaker, (clips, acc) in ordered:
        table.add_row(speaker, str(clips), f"{acc:.3f}")
    console.print(table)
    mean = statistics.fmean(acc for _, acc in results.values())
    worst, (clips, acc) = ordered[0]
    console.print(
        f"[bold]leave-one-speaker-out[/]: mean {mean:.3f} over {len(results)} speakers, "
        f"worst {worst} {acc:.3f} on {clips} clips (goal: worst >= 0.85)"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=144)
    parser.add_argument("--speakers", type=int, default=16)
    parser.add_argument("--workspace", type=Path, help="keep the workspace here (default: temp)")
    parser.add_argument("--ablate", action="store_true")
    parser.add_argument("--ablate-batch", type=int, default=32)
    parser.add_argument("--ablate-folds", type=int, default=5)
    parser.add_argument(
        "--ablate-seeds", type=int, default=1, help="train each variant with N seeds, report means"
    )
    parser.add_argument(
        "--ablate-measures", nargs="+", metavar="NAME", help="switch off only these (e.g. reverb)"
    )
    parser.add_argument("--no-loso", action="store_true", help="skip leave-one-speaker-out")
    parser.add_argument(
        "--loso-only", action="store_true", help="only leave-one-speaker-out, on --workspace"
    )
    parser.add_argument(
        "--ablate-only",
        action="store_true",
        help="only the ablation, on the finished run in --workspace",
    )
    args = parser.parse_args()
    from kwsops.ml.augment import AUGMENTATIONS

    unknown = sorted(set(args.ablate_measures or []) - set(AUGMENTATIONS))
    if unknown:
        parser.error(
            f"unknown measure(s) {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)}"
        )

    with tempfile.TemporaryDirectory(prefix="kwsops-bench-") as scratch:
        ws = Workspace((args.workspace or Path(scratch) / "ws").resolve())
        if args.ablate_only or args.loso_only:
            if not args.workspace or not ws.comparison_report.is_file():
                sys.exit(
                    "--ablate-only and --loso-only need --workspace DIR holding a finished run"
                )
            if args.loso_only:
                leave_one_speaker_out(ws, args.ablate_batch)
                return
            ablate(
                ws, args.ablate_batch, args.ablate_folds, args.ablate_seeds, args.ablate_measures
            )
            return
        subprocess.run([*KWSOPS, "init", str(ws.root)], check=True, stdout=subprocess.DEVNULL)
        synth, _ = timed_cli(
            ws,
            "demo-data",
            "--per-label",
            str(args.per_label),
            "--speakers",
            str(args.speakers),
            "--quiet",
        )
        files = sum(1 for p in ws.input_dir.rglob("*") if p.is_file())
        console.print(
            f"demo data: {files} recordings synthesised in {synth:.1f} s "
            f"(not part of the run); {os.cpu_count()} CPU cores"
        )
        total, peak = timed_cli(ws, "run", "--quiet")
        stage_table(ws, total, peak)
        noop, _ = timed_cli(ws, "run", "--quiet")
        console.print(f"no-op rerun: {noop:.2f} s (target <= 3 s)")
        report = accuracy_table(ws)
        best = report["revisions"][0]
        console.print(
            f"[bold]summary[/]: whole run {total / 60:.1f} min (target <= 10), best "
            f"{best['spec']} acc {best['accuracy']['mean']:.3f} (target >= 0.95), ensemble "
            f"{best['ensemble_accuracy']['mean']:.3f}, {best['latency_ms']:.2f} ms/clip "
            "(target <= 5), no-op "
            f"{noop:.2f} s"
        )
        if not args.no_loso:
            leave_one_speaker_out(ws, args.ablate_batch)
        if args.ablate:
            ablate(
                ws, args.ablate_batch, args.ablate_folds, args.ablate_seeds, args.ablate_measures
            )


if __name__ == "__main__":
    main()
