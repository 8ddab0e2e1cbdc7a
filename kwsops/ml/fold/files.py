"""What a fold folder holds: ``model.safetensors`` (weights and metadata), ``metrics.json`` and
``history.csv``, written the same by both ways of training, and the history read back."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

from kwsops.atomic import atomic_write_json
from kwsops.ml.features import training_clips
from kwsops.ml.fold.book import HISTORY_FIELDS
from kwsops.ml.fold.setup import Fold, FoldData, FoldSetup
from kwsops.ml.model import count_parameters, save_model
from kwsops.ml.split import clip_folds_phrase, word_mask


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


@dataclass(frozen=True)
class FoldRun:
    """How a call trained its folds, for each fold's ``metrics.json`` and model metadata."""

    setup: FoldSetup
    source: FoldData
    threads: int  # torch threads of a fold trained alone; lanes of stacked folds
    stacked_folds: int = 1  # folds trained together with it (kwsops.ml.stacked), itself included


def write_fold(out_dir: Path, fold: Fold, run: FoldRun, seconds: float) -> FoldResult:
    """The fold's best weights as ``model.safetensors``, its ``history.csv`` and
    ``metrics.json`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fold.model.load_state_dict(fold.book.best_state)
    metrics = fold_metrics(fold, run, seconds)
    setup, data = run.setup, run.source.data
    meta = {
        "labels": data.label_names,
        "features": data.feature_settings.as_dict(),
        "arch": setup.arch,
        "params": {**setup.settings.as_dict(), "augment": setup.augment.as_dict()},
        "fold": fold.fold,
        "metrics": metrics,
        "trained_on": training_clips(data.ids, data.speakers),  # its folds: the train split
    }
    model_path = save_model(out_dir / "model.safetensors", fold.model.cpu(), meta)
    write_history(out_dir / "history.csv", fold.book.history)
    atomic_write_json(out_dir / "metrics.json", metrics)
    fields = FoldResult.__dataclass_fields__
    return FoldResult(**{k: v for k, v in metrics.items() if k in fields}, model_path=model_path)


def fold_metrics(fold: Fold, run: FoldRun, seconds: float) -> dict:
    """The fold's ``metrics.json``: its best epoch's scores, what it ran, on what and where."""
    settings, data, note = run.setup.settings, run.source.data, run.source.note
    book, best = fold.book, fold.book.best
    return {
        "fold": fold.fold,
        "batch_size": settings.batch_size,
        "best_epoch": best["epoch"],
        "epochs_run": len(book.history),
        "stopped_early": len(book.history) < settings.epochs,
        "val_acc": best["val_acc"],
        "val_loss": best["val_loss"],
        "train_acc": best["train_acc"],
        "train_loss": best["train_loss"],
        "seconds": round(seconds, 3),
        "params": count_parameters(fold.model),
        "n_train": len(fold.train_idx),
        "n_val": len(fold.val_idx),
        "val_speakers": sorted({data.speakers[i] for i in fold.val_idx if data.speakers[i]}),
        "fold_grouping": "clip" if note else "speaker",
        "fold_note": note,
        "fold_fallback": (
            clip_folds_phrase(
                data.speakers,
                data.ids,
                settings.folds,
                word_mask(data.labels.numpy(), data.label_names),
            )
            if note
            else ""
        ),
        "recorded_noise_pieces": 0 if run.source.recorded is None else len(run.source.recorded),
        "device": str(run.setup.device),
        "threads": run.threads,
        "stacked_folds": run.stacked_folds,
        "precision": run.setup.precision,
    }


def write_history(path: Path, rows: list[dict]) -> None:
    """``history.csv``: one row per epoch, the columns ``HISTORY_FIELDS``."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path: Path) -> list[dict]:
    """``history.csv`` as rows of numbers (an empty cell left out)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(handle)
        ]
