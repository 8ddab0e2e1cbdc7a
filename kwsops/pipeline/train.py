"""Training stages as plain functions: the folds of a batch size together, one fold, and the
per-batch-size collection.

By default the folds of a batch size train together in one stage (``train_folds_stage``,
:mod:`kwsops.ml.stacked`); one fold per stage (``train_fold_stage``) lets a central scheduler
spread them over workers on several machines. Both write the same fold folders and stamps.
The collection stage gathers them into one ClearML `train model` task per batch size, which
is what a `clearml:<task-id>` revision points at.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kwsops.atomic import atomic_dir, atomic_write_json, remove_leftovers
from kwsops.config import TrainSettings
from kwsops.keywords import DEFAULT_BUDGET, OPERATING_POINT
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import write_stamp
from kwsops.workspace import Workspace

log = logging.getLogger("kwsops.train")
OOF_SCORES = "oof_scores.json"  # the training clips' out-of-fold scores, beside the folds
EpochFn = Callable[[int, dict], None]
FoldEpochFn = Callable[[int, int, dict], None]  # (fold, epoch, row)


def epoch_line(settings: TrainSettings, fold: int, epoch: int, row: dict) -> str:
    """One epoch as the run log shows it: fold, epoch, losses, accuracies, learning rate."""
    return (
        f"batch {settings.batch_size} fold {fold} epoch {epoch}/{settings.epochs}: "
        f"loss {row['train_loss']:.4f} acc {row['train_acc']:.3f} "
        f"val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.3f} lr {row['lr']:.2e}"
    )


def check_folds(ws: Workspace, settings: TrainSettings, *, say: bool = True) -> str:
    """The checks of ``settings.folds`` against the spectrograms, run by every training stage
    whatever is up to date (MakeSpectrograms does not rerun when only the folds change):
    DataCheckError (exit 4) for a label with too few clips; the clip-by-clip fall-back in a
    few words ("" when none), logged as a warning when ``say``."""
    from kwsops.ml.features import load_split
    from kwsops.ml.split import check_clips_for_folds, clip_folds_phrase, word_mask

    train, test = load_split(ws.spec_dir, "train"), load_split(ws.spec_dir, "test")
    counts = Counter(train.labels.tolist()) + Counter(test.labels.tolist())
    check_clips_for_folds(
        {name: counts[k] for k, name in enumerate(train.label_names)}, settings.folds
    )
    words = word_mask(train.labels.tolist(), train.label_names)
    fallback = clip_folds_phrase(train.speakers, train.ids, settings.folds, words)
    if fallback and say:
        log.warning("batch %s: %s (validation voices are also trained on)",
                    settings.batch_size, fallback)  # fmt: skip
    return fallback


def fold_dir(ws: Workspace, batch_size: int, fold: int) -> Path:
    return ws.batch_dir(batch_size) / f"fold_{fold}"


def train_fold_stage(
    ws: Workspace,
    key: str,
    settings: TrainSettings,
    fold: int,
    *,
    threads: int | None = None,
    progress: ProgressFn = no_progress,
    on_epoch: EpochFn | None = None,
) -> StageResult:
    """Train one fold; every epoch goes to the run log (``kwsops.train``) and to ``on_epoch``."""
    from kwsops.ml.training import train_fold

    check_folds(ws, settings, say=fold == 0)  # the fall-back said once per batch size

    def epoch_done(epoch: int, row: dict) -> None:
        log.info(epoch_line(settings, fold, epoch, row))
        if on_epoch is not None:
            on_epoch(epoch, row)

    batch_dir = ws.batch_dir(settings.batch_size)
    batch_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(batch_dir)
    with atomic_dir(fold_dir(ws, settings.batch_size, fold)) as tmp:
        result = train_fold(ws.spec_dir, tmp, settings, fold, threads=threads, progress=progress,
                            on_epoch=epoch_done)  # fmt: skip
        write_stamp(tmp, key, fold=fold, val_accuracy=result.val_accuracy)
    log_stopped_early(settings, [result])
    ran = epochs_phrase([result.epochs_run], settings.epochs)
    detail = f"batch {settings.batch_size} fold {fold}: val acc {result.val_accuracy:.3f}, {ran}"
    return StageResult(
        detail,
        {"val_accuracy": result.val_accuracy, **epochs_fields([result.epochs_run], settings)},
    )


def epochs_phrase(ran: list[int], planned: int) -> str:
    """``15, 14 of 80 epochs, stopped early``: what the folds ran, not what was planned."""
    if all(n >= planned for n in ran):
        return f"{planned} epochs" + (" each" if len(ran) > 1 else "")
    return f"{', '.join(map(str, ran))} of {planned} epochs, stopped early"


def epochs_fields(ran: list[int], settings: TrainSettings) -> dict:
    """The summary's epochs run per fold, planned, and whether any fold stopped early."""
    return {
        "epochs": ran,
        "epochs_planned": settings.epochs,
        "stopped_early": any(n < settings.epochs for n in ran),
    }


def log_stopped_early(settings: TrainSettings, results: list) -> None:
    for r in results:
        if r.stopped_early:
            log.info(
                f"batch {settings.batch_size} fold {r.fold} stopped early at epoch "
                f"{r.epochs_run} of {settings.epochs} (best epoch {r.best_epoch})"
            )


def train_folds_stage(
    ws: Workspace,
    keys: dict[int, str],
    settings: TrainSettings,
    *,
    progress: ProgressFn = no_progress,
    on_epoch: FoldEpochFn | None = None,
) -> StageResult:
    """Train the folds ``keys`` names (fold -> its stage key) together; each fold folder and
    stamp is what ``train_fold_stage`` leaves. Nothing is kept unless every fold finished: a
    failed or cancelled stage leaves only the temp folders, which the next run removes."""
    from kwsops.ml.stacked import train_folds

    check_folds(ws, settings)

    def epoch_done(fold: int, epoch: int, row: dict) -> None:
        log.info(epoch_line(settings, fold, epoch, row))
        if on_epoch is not None:
            on_epoch(fold, epoch, row)

    batch_dir = ws.batch_dir(settings.batch_size)
    batch_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(batch_dir)
    with contextlib.ExitStack() as stack:
        tmps = {k: stack.enter_context(atomic_dir(fold_dir(ws, settings.batch_size, k)))
                for k in sorted(keys)}  # fmt: skip
        results = train_folds(ws.spec_dir, tmps, settings, progress=progress, on_epoch=epoch_done)
        for result in results:
            write_stamp(tmps[result.fold], keys[result.fold], fold=result.fold,
                        val_accuracy=result.val_accuracy)  # fmt: skip
    log_stopped_early(settings, results)
    accuracies = ", ".join(f"{r.val_accuracy:.3f}" for r in results)
    ran = [r.epochs_run for r in results]
    detail = (
        f"batch {settings.batch_size} folds {sorted(keys)}: val acc {accuracies}; "
        f"{epochs_phrase(ran, settings.epochs)}"
    )
    return StageResult(detail, {"folds": len(results), **epochs_fields(ran, settings)})


def keep_operating_point(ws: Workspace, settings: TrainSettings, budget: float) -> dict:
    """Score the training clips out of fold, keep the scores (``oof_scores.json``) and the
    operating point chosen on them for ``budget`` (``operating_point.json``) beside the folds."""
    from kwsops.keywords import write_operating_point
    from kwsops.ml.oof import out_of_fold_scores
    from kwsops.ml.spotting import choose_threshold

    batch_dir = ws.batch_dir(settings.batch_size)
    paths = [
        fold_dir(ws, settings.batch_size, k) / "model.safetensors" for k in range(settings.folds)
    ]
    scores = out_of_fold_scores(ws.spec_dir, paths, settings)
    atomic_write_json(batch_dir / OOF_SCORES, scores.as_dict())
    if not scores.negative_hours:  # no _unknown_ nor _silence_: nothing to budget against
        (batch_dir / OPERATING_POINT).unlink(missing_ok=True)
        return {}
    point = choose_threshold(scores, budget)
    write_operating_point(batch_dir, point)
    return {"threshold": point.threshold, "miss_rate": point.miss_rate,
            "negative_minutes": point.negative_minutes, "false_alarms_per_hour": budget}  # fmt: skip


def collect_folds_stage(
    ws: Workspace,
    key: str,
    settings: TrainSettings,
    *,
    stamp_file: Path,
    budget: float = DEFAULT_BUDGET,
) -> StageResult:
    """Drop folds left from a run with more folds, summarise, keep the operating point for
    ``budget`` false alarms per hour, log the `train model` task."""
    from kwsops.ml.fold.files import read_history
    from kwsops.ml.training import summarize_folds
    from kwsops.tracking.tracker import stage_task

    fallback = check_folds(ws, settings, say=False)  # said when its folds trained
    batch_dir = ws.batch_dir(settings.batch_size)
    remove_leftovers(batch_dir)
    for stale in batch_dir.glob("fold_*"):
        if stale.is_dir() and int(stale.name.split("_")[1]) >= settings.folds:
            shutil.rmtree(stale)
    folds = [fold_dir(ws, settings.batch_size, k) for k in range(settings.folds)]
    fold_metrics = [json.loads((folder / "metrics.json").read_text()) for folder in folds]
    summary = summarize_folds(fold_metrics)
    operating = keep_operating_point(ws, settings, budget)
    params = settings.as_dict()
    tags = [f"batch_{settings.batch_size}"]
    with stage_task(ws.root, "train model", "training", params, tags=tags) as tracker:
        for k, folder in enumerate(folds):
            for row in read_history(folder / "history.csv"):
                epoch = int(row["epoch"])
                for metric in ("loss", "acc"):
                    for split in ("train", "val"):
                        name = f"{split}_{metric}"
                        if name in row:
                            title = "loss" if metric == "loss" else "accuracy"
                            tracker.scalar(title, f"fold {k} {split}", row[name], epoch)
            tracker.artifact(f"fold_{k}", folder / "model.safetensors")
        for name, value in {
            **summary,
            **{f"operating {k}": v for k, v in operating.items()},
        }.items():
            if isinstance(value, (int, float)):
                tracker.single(name, value)
    record = {
        "batch_size": settings.batch_size,
        "params": params,
        "summary": summary,
        "folds": fold_metrics,
        "operating_point": operating,
        "clearml_task": tracker.task_id,
        "clearml_mode": tracker.mode,
    }
    atomic_write_json(batch_dir / "metrics.json", record)
    atomic_write_json(stamp_file, {"key": key, "summary": summary})
    mean = summary.get("val_accuracy_mean", 0.0)
    ran = [int(m.get("epochs_run", settings.epochs)) for m in fold_metrics]
    detail = (
        f"batch {settings.batch_size}: mean val acc {mean:.3f} over {settings.folds} folds;"
        f" {epochs_phrase(ran, settings.epochs)}"
    )
    if fallback:
        detail += f"; {fallback}"
    if operating:
        detail += (
            f"; threshold {operating['threshold']:.3f} for {budget:g} false alarm(s)/h: "
            f"{operating['miss_rate']:.1%} words missed out of fold "
            f"({operating['negative_minutes']:.0f} min of negatives)"
        )
    facts = {"val_accuracy_mean": mean, "fold_note": fallback, **epochs_fields(ran, settings)}
    return StageResult(detail, {**facts, "task_id": tracker.task_id})
