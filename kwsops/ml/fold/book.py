"""A fold's epochs: its history rows, best epoch and weights, and early stopping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


@dataclass
class EpochBook:
    """A fold's history rows (``HISTORY_FIELDS``), best epoch and weights, and early stopping."""

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
