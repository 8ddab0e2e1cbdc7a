"""K-fold training of the KWS network: speaker-grouped folds, early stopping, seeded and repeatable.

``train_fold`` trains one fold into a folder the caller owns (an atomic temp folder): the model
file, ``history.csv`` and ``metrics.json``. The loop knows nothing of Luigi or ClearML; callers
get every epoch through ``on_epoch`` and ``progress``.
"""

from __future__ import annotations

import contextlib
import csv
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kwsops.atomic import atomic_write_json
from kwsops.config import PRECISIONS, TrainSettings, resolve_threads
from kwsops.ml.augment import Augmenter, AugmentSettings, noise_bank
from kwsops.ml.features import SpecSplit, load_noise, load_split, training_clips
from kwsops.ml.model import build_model, count_parameters, default_arch, save_model
from kwsops.ml.split import clip_folds_phrase, word_mask
from kwsops.ml.split import fold_indices as split_fold_indices
from kwsops.ml.store import Rows
from kwsops.progress import ProgressFn, no_progress

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
_EVAL_BATCH = 256


@dataclass(frozen=True)
class FoldResult:
    fold: int
    batch_size: int
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    val_acc: float
    val_loss: float
    train_acc: float
    train_loss: float
    seconds: float
    params: int
    n_train: int
    n_val: int
    model_path: Path

    @property
    def val_accuracy(self) -> float:
        return self.val_acc

    def as_dict(self) -> dict:
        return {**asdict(self), "model_path": str(self.model_path)}


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def step_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the training steps' forward pass runs in under autocast; None: float32.

    ``auto`` is bfloat16 on a CPU with bfloat16 arithmetic (AVX512-BF16 or AMX): a stacked
    step of the default network takes ~0.6x the float32 time there, with the same held-out
    accuracy (README "Scale"). Elsewhere float32: a CPU without it would emulate bfloat16, and
    on a GPU a step of this small network waits on kernel launches, not arithmetic. Only the
    convolutions and the head run in bfloat16; weights, gradients, the optimizer, batch-norm
    statistics, the loss and every validation score stay float32.
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(
            f"training precision {precision!r}: use {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}"
        )
    if device.type != "cpu":
        return None
    capabilities = getattr(torch.cpu, "get_capabilities", dict)()
    native = capabilities.get("avx512_bf16") or capabilities.get("amx_bf16")
    return torch.bfloat16 if native else None


def precision_name(dtype: torch.dtype | None) -> str:
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``'s kind; nothing when ``dtype`` is None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def repeatable(seed: int, threads: int) -> Iterator[None]:
    """Seeds, deterministic kernels and a fixed thread count for the block; restores them after.

    Deterministic mode would also fill every new tensor with NaN (a debugging aid that finds
    reads of uninitialised memory): ~10% of a CPU training step here, 30,000 fills an epoch,
    and no value changes without it, so it is off.
    """
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.utils.deterministic.fill_uninitialized_memory = old_fill


def fold_indices(split: SpecSplit, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folds`` (train, val) index pairs of a split (see :func:`kwsops.ml.split.fold_indices`)."""
    return split_fold_indices(
        split.labels.numpy(), split.speakers, split.ids, folds, seed, split.label_names
    )[0]


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


def _augment_settings(augment: AugmentSettings | None, settings: TrainSettings) -> AugmentSettings:
    if augment is not None:
        return augment
    return AugmentSettings.from_dict(dict(settings.extra.get("augment", {})))


def _train_epoch(
    model: torch.nn.Module,
    augmenter: Augmenter,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    x: torch.Tensor,
    y: torch.Tensor,
    order: torch.Tensor,
    settings: TrainSettings,
    dtype: torch.dtype | None = None,
) -> tuple[float, float]:
    """One pass over ``order``; (mean training loss, accuracy on the augmented clips)."""
    model.train()
    seen, loss_sum, correct = 0, 0.0, 0
    for i in range(0, len(order), settings.batch_size):
        batch = order[i : i + settings.batch_size]
        if len(batch) < 2:  # batch norm needs two clips
            continue
        xb, yb = augmenter(x[batch], y[batch])
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
    augment: AugmentSettings | None = None,
    progress: ProgressFn = no_progress,
    on_epoch: Callable[[int, dict], None] | None = None,
    threads: int | None = None,
    device: str | torch.device | None = None,
    data: SpecSplit | None = None,
) -> FoldResult:
    """Train fold ``fold`` (0-based, of ``settings.folds``) of ``spec_dir``'s train split
    (or of ``data``, a split already in memory: the benchmark's leave-one-speaker-out).

    ``augment=None`` uses ``settings.extra["augment"]`` (a dict of AugmentSettings fields) over
    the defaults; ``settings.extra["arch"]`` overrides ``default_arch()`` fields. Writes
    ``model.safetensors``, ``history.csv`` and ``metrics.json`` into ``out_dir``.
    """
    if not 0 <= fold < settings.folds:
        raise ValueError(f"fold {fold} out of range: 0..{settings.folds - 1}")
    augment = _augment_settings(augment, settings)
    arch = {**default_arch(), **settings.extra.get("arch", {})}
    device = torch.device(device) if device is not None else pick_device()
    threads = resolve_threads(threads)
    dtype = step_dtype(settings.precision, device)
    seed = settings.seed * 1000 + fold
    start = time.monotonic()

    data = data if data is not None else load_split(spec_dir, "train")
    pairs, fold_note = split_fold_indices(
        data.labels.numpy(),
        data.speakers,
        data.ids,
        settings.folds,
        settings.seed,
        data.label_names,
    )
    train_idx, val_idx = pairs[fold]
    x_train = Rows(data.features, train_idx, device)  # read per batch, never the whole fold
    y_train = data.labels[torch.from_numpy(train_idx)].to(device)
    x_val = Rows(data.features, val_idx, device)
    y_val = data.labels[torch.from_numpy(val_idx)].to(device)
    n_classes, n_mels = len(data.label_names), data.features.shape[1]

    recorded = load_noise(spec_dir)
    with repeatable(seed, threads):
        model = build_model(arch, n_classes, n_mels).to(device)
        bank = fold_noise_bank(data, train_idx, seed, recorded)
        augmenter = Augmenter(
            augment,
            n_classes,
            data.feature_settings,
            bank.to(device),
            seed=seed,
            label_names=data.label_names,
        )
        order_gen = torch.Generator().manual_seed(seed)
        optimizer, schedule = new_optimizer(model, settings, len(train_idx))
        book = EpochBook(settings.patience)
        for epoch in range(1, settings.epochs + 1):
            epoch_start = time.monotonic()
            lr = optimizer.param_groups[0]["lr"]
            order = torch.randperm(len(train_idx), generator=order_gen).to(device)
            train_loss, train_acc = _train_epoch(
                model, augmenter, optimizer, schedule, x_train, y_train, order, settings, dtype
            )
            val_loss, val_acc = evaluate(model, x_val, y_val)
            row = book.record(
                model, epoch, (train_loss, train_acc), (val_loss, val_acc), lr, epoch_start
            )
            if on_epoch is not None:
                on_epoch(epoch, dict(row))
            progress(epoch, settings.epochs, f"fold {fold} epoch {epoch} val_acc {val_acc:.3f}")
            if book.stopped:
                progress(
                    settings.epochs,
                    settings.epochs,
                    f"fold {fold} stopped early at epoch {epoch}, best {book.best['epoch']}",
                )
                break
        model.load_state_dict(book.best_state)

    run = FoldRun(fold, settings, train_idx, val_idx, fold_note, recorded, device, threads,
                  precision=precision_name(dtype))  # fmt: skip
    return write_fold(out_dir, model, book, run, data, arch, augment, time.monotonic() - start)


@dataclass(frozen=True)
class FoldRun:
    """What a fold was trained on and with, for its ``metrics.json`` and model metadata."""

    fold: int
    settings: TrainSettings
    train_idx: np.ndarray
    val_idx: np.ndarray
    fold_note: str
    recorded: torch.Tensor | None
    device: torch.device
    threads: int
    stacked_folds: int = 1  # folds trained together with it (kwsops.ml.stacked), itself included
    precision: str = "float32"  # what the training steps ran in (step_dtype)


def fold_noise_bank(
    data: SpecSplit, train_idx: np.ndarray, seed: int, recorded: torch.Tensor | None
) -> torch.Tensor:
    """The fold's noise bank (CPU): speech-shaped noise from the mean spectrum of its training
    clips, read a batch at a time (never the whole fold at once), and the recorded noise."""
    frames = data.features.shape[2]
    clips = Rows(data.features, train_idx)
    return noise_bank(data.feature_settings, frames, clips, seed=seed, recorded=recorded)


def new_optimizer(
    model: torch.nn.Module, settings: TrainSettings, n_train: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    """A fold's AdamW and its one-cycle schedule over every step of ``settings.epochs``."""
    # fused: one kernel for all of a model's tensors (the per-tensor loop was ~10% of a step)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
        fused=True,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=settings.learning_rate,
        total_steps=settings.epochs * max(1, -(-n_train // settings.batch_size)),
        pct_start=0.15,
        div_factor=10.0,
        final_div_factor=100.0,
    )
    return optimizer, schedule


@dataclass
class EpochBook:
    """A fold's history rows, best epoch and weights, and early stopping."""

    patience: int
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    waited: int = 0

    @property
    def stopped(self) -> bool:
        return self.waited >= self.patience

    def record(
        self,
        model: torch.nn.Module,
        epoch: int,
        train: tuple[float, float],
        val: tuple[float, float],
        lr: float,
        epoch_start: float,
    ) -> dict:
        """The epoch's history row; keeps the model's weights when they are the best so far."""
        (train_loss, train_acc), (val_loss, val_acc) = train, val
        row = {
            "epoch": epoch,
            "train_loss": round(train_loss, 6),
            "train_acc": round(train_acc, 6),
            "val_loss": round(val_loss, 6),
            "val_acc": round(val_acc, 6),
            "lr": lr,
            "seconds": round(time.monotonic() - epoch_start, 3),
        }
        self.history.append(row)
        # best weights by validation loss: accuracy on a few speakers saturates and picks
        # lucky early epochs; loss keeps ranking them (ties: higher accuracy)
        best = self.best
        improved = not best or val_loss < best["val_loss"] - 1e-4
        if not best or (-val_loss, val_acc) > (-best["val_loss"], best["val_acc"]):
            self.best = row
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.waited = 0 if improved else self.waited + 1
        return row


def write_fold(
    out_dir: Path,
    model: torch.nn.Module,
    book: EpochBook,
    run: FoldRun,
    data: SpecSplit,
    arch: dict,
    augment: AugmentSettings,
    seconds: float,
) -> FoldResult:
    """The fold's ``model.safetensors``, ``history.csv`` and ``metrics.json`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings, best = run.settings, book.best
    metrics = {
        "fold": run.fold,
        "batch_size": settings.batch_size,
        "best_epoch": best["epoch"],
        "epochs_run": len(book.history),
        "stopped_early": len(book.history) < settings.epochs,
        "val_acc": best["val_acc"],
        "val_loss": best["val_loss"],
        "train_acc": best["train_acc"],
        "train_loss": best["train_loss"],
        "seconds": round(seconds, 3),
        "params": count_parameters(model),
        "n_train": len(run.train_idx),
        "n_val": len(run.val_idx),
        "val_speakers": sorted({data.speakers[i] for i in run.val_idx if data.speakers[i]}),
        "fold_grouping": "clip" if run.fold_note else "speaker",
        "fold_note": run.fold_note,
        "fold_fallback": (
            clip_folds_phrase(
                data.speakers,
                data.ids,
                settings.folds,
                word_mask(data.labels.numpy(), data.label_names),
            )
            if run.fold_note
            else ""
        ),
        "recorded_noise_pieces": 0 if run.recorded is None else len(run.recorded),
        "device": str(run.device),
        "threads": run.threads,
        "stacked_folds": run.stacked_folds,
        "precision": run.precision,
    }
    meta = {
        "labels": data.label_names,
        "features": data.feature_settings.as_dict(),
        "arch": arch,
        "params": {**settings.as_dict(), "augment": augment.as_dict()},
        "fold": run.fold,
        "metrics": metrics,
        "trained_on": training_clips(data.ids, data.speakers),  # its folds: the train split
    }
    model_path = save_model(out_dir / "model.safetensors", model.cpu(), meta)
    with (out_dir / "history.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(book.history)
    atomic_write_json(out_dir / "metrics.json", metrics)
    fields = FoldResult.__dataclass_fields__
    return FoldResult(**{k: v for k, v in metrics.items() if k in fields}, model_path=model_path)


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
