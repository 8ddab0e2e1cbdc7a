"""K-fold training of the KWS network one fold at a time: speaker-grouped folds, early stopping,
seeded and repeatable.

``train_fold`` trains one fold into a folder the caller owns (an atomic temp folder): the model
file, ``history.csv`` and ``metrics.json`` (:mod:`kwsops.ml.fold` sets the fold up and writes
it). The loop knows nothing of Luigi or ClearML; callers get every epoch through ``on_epoch``
and ``progress``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from kwsops.config import TrainSettings, resolve_threads
from kwsops.ml.compute import autocast, repeatable
from kwsops.ml.features import SpecSplit
from kwsops.ml.fold.files import FoldResult, FoldRun, write_fold
from kwsops.ml.fold.setup import (
    DEFAULT_OPTIONS,
    Fold,
    FoldData,
    FoldOptions,
    FoldSetup,
    fold_seed,
    new_fold,
)
from kwsops.ml.store import Rows
from kwsops.progress import ProgressFn, no_progress

_EVAL_BATCH = 256


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), _EVAL_BATCH):
        logits = model(x[i : i + _EVAL_BATCH])
        target = y[i : i + _EVAL_BATCH]
        loss += float(F.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(1) == target).sum())
    return loss / max(len(x), 1), correct / max(len(x), 1)


def _train_epoch(
    fold: Fold,
    x: Rows,
    y: torch.Tensor,
    order: torch.Tensor,
    settings: TrainSettings,
    dtype: torch.dtype | None = None,
) -> tuple[float, float]:
    """One pass over ``order``; (mean training loss, accuracy on the augmented clips)."""
    model, optimizer, schedule = fold.model, fold.optimizer, fold.schedule
    model.train()
    seen, loss_sum, correct = 0, 0.0, 0
    for i in range(0, len(order), settings.batch_size):
        batch = order[i : i + settings.batch_size]
        if len(batch) < 2:  # batch norm needs two clips
            continue
        xb, yb = fold.augmenter(x[batch], y[batch])
        with autocast(xb.device, dtype):
            logits = model(xb).to(xb.dtype)
        loss = F.cross_entropy(logits, yb, label_smoothing=settings.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule.last_epoch + 1 < schedule.total_steps:
            schedule.step()
        hard = yb if yb.dim() == 1 else yb.argmax(1)
        seen += len(batch)
        loss_sum += float(loss.detach()) * len(batch)
        correct += int((logits.argmax(1) == hard).sum())
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def train_fold(
    spec_dir: Path,
    out_dir: Path,
    settings: TrainSettings,
    fold: int,
    *,
    options: FoldOptions = DEFAULT_OPTIONS,
    progress: ProgressFn = no_progress,
    on_epoch: Callable[[int, dict], None] | None = None,
    threads: int | None = None,
) -> FoldResult:
    """Train fold ``fold`` (0-based, of ``settings.folds``) of ``spec_dir``'s train split
    (or of ``options.data``, a split already in memory: the benchmark's leave-one-speaker-out).

    ``options.augment=None`` uses ``settings.extra["augment"]`` (a dict of AugmentSettings
    fields) over the defaults; ``settings.extra["arch"]`` overrides ``default_arch()`` fields.
    Writes ``model.safetensors``, ``history.csv`` and ``metrics.json`` into ``out_dir``.
    """
    if not 0 <= fold < settings.folds:
        raise ValueError(f"fold {fold} out of range: 0..{settings.folds - 1}")
    setup = FoldSetup.of(settings, options)
    threads = resolve_threads(threads)
    start = time.monotonic()
    source = FoldData.load(spec_dir, settings, options.data)
    with repeatable(fold_seed(settings, fold), threads):
        state = new_fold(setup, source, fold)
        _train_epochs(state, setup, source.data, progress, on_epoch)
    return write_fold(out_dir, state, FoldRun(setup, source, threads), time.monotonic() - start)


def _train_epochs(
    fold: Fold,
    setup: FoldSetup,
    data: SpecSplit,
    progress: ProgressFn,
    on_epoch: Callable[[int, dict], None] | None,
) -> None:
    """Train ``fold`` epoch by epoch until its last epoch or early stop."""
    settings, device = setup.settings, setup.device
    x_train = Rows(data.features, fold.train_idx, device)  # read per batch, never the whole fold
    y_train = data.labels[torch.from_numpy(fold.train_idx)].to(device)
    x_val = Rows(data.features, fold.val_idx, device)
    y_val = data.labels[torch.from_numpy(fold.val_idx)].to(device)
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.monotonic()
        order = fold.start_epoch().to(device)
        train_fit = _train_epoch(fold, x_train, y_train, order, settings, setup.dtype)
        val = evaluate(fold.model, x_val, y_val)
        row = fold.record(epoch, train_fit, val, epoch_start)
        if on_epoch is not None:
            on_epoch(epoch, dict(row))
        progress(epoch, settings.epochs, fold.epoch_note(epoch, val[1]))
        if fold.book.stopped:
            progress(settings.epochs, settings.epochs, fold.stop_note(epoch))
            break


def summarize_folds(results: list[FoldResult] | list[dict]) -> dict:
    """Flat summary over folds: mean/std of best val accuracy and loss, epochs, seconds.

    Takes ``FoldResult``s or the folds' ``metrics.json`` dicts; every value but the per-fold
    lists is a number, so a tracker can log them as single values.
    """
    if not results:
        raise ValueError("no fold results to summarise")
    rows = [r.as_dict() if isinstance(r, FoldResult) else dict(r) for r in results]

    def column(name: str) -> list[float]:
        return [float(row[name]) for row in rows]

    summary: dict = {"folds": len(rows), "batch_size": int(rows[0]["batch_size"])}
    for name, key in (
        ("val_accuracy", "val_acc"),
        ("val_loss", "val_loss"),
        ("epochs_run", "epochs_run"),
        ("best_epoch", "best_epoch"),
        ("seconds", "seconds"),
    ):
        values = column(key)
        summary[f"{name}_mean"] = round(statistics.fmean(values), 6)
        summary[f"{name}_std"] = round(statistics.pstdev(values), 6) if len(values) > 1 else 0.0
    summary["val_accuracy_min"] = min(column("val_acc"))
    summary["seconds_total"] = round(sum(column("seconds")), 3)
    summary["params"] = int(rows[0]["params"])
    summary["val_accuracy_per_fold"] = column("val_acc")
    return summary
