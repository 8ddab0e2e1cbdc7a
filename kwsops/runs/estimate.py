"""How long a run's training will take, from the folds trained before (for the start dialog).

Every trained fold leaves ``data/models/batch_<bs>/fold_<k>/metrics.json`` with its seconds and
epochs run, so seconds per epoch are known per batch size; a batch size never trained is
estimated from the others (an epoch sees every training clip whatever the batch size). A fold
trained alone (a TrainFold task) took its seconds on one of ``workers`` slots; folds trained
together (``stacked_folds`` > 1, the default Train) shared their wall time, on every core, so
each counts its share of it. Early stopping can only make a run shorter than the estimate.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from kwsops.workspace import Workspace


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: no fold trained yet to estimate from
    folds_seen: int

    def text(self) -> str:
        if self.seconds is None:
            return "no earlier folds to estimate the training time from"
        minutes = self.seconds / 60
        when = f"{minutes:.0f} min" if minutes >= 1.5 else f"{self.seconds:.0f} s"
        return f"training ≈ {when} at most (from {self.folds_seen} earlier folds)"


def epoch_seconds(ws: Workspace, workers: int = 1) -> dict[int, list[float]]:
    """Seconds per epoch of every fold trained in the workspace, by batch size, as one of
    ``workers`` slots takes it (``workers`` such slots run at once)."""
    found: dict[int, list[float]] = {}
    for metrics in ws.models_dir.glob("batch_*/fold_*/metrics.json"):
        try:
            data = json.loads(metrics.read_text())
            batch, seconds, epochs = (
                int(data["batch_size"]),
                float(data["seconds"]),
                int(data["epochs_run"]),
            )
            stacked = max(1, int(data.get("stacked_folds", 1)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if epochs > 0:
            share = seconds / epochs if stacked == 1 else seconds / epochs / stacked * workers
            found.setdefault(batch, []).append(share)
    return found


def estimate_training(
    ws: Workspace, batch_sizes: list[int], epochs: int, folds: int, workers: int = 1
) -> Estimate:
    known = epoch_seconds(ws, max(1, workers))
    if not known:
        return Estimate(None, 0)
    every = [s for values in known.values() for s in values]
    fallback = statistics.median(every)
    total = sum(statistics.median(known.get(b, [fallback])) * epochs * folds for b in batch_sizes)
    return Estimate(total / max(1, workers), len(every))


def workers_of(luigi_cfg: Path) -> int:
    """luigi.cfg ``[core] workers`` (1 when unset or unreadable)."""
    import configparser

    parser = configparser.ConfigParser()
    try:
        parser.read(luigi_cfg)
        return max(1, parser.getint("core", "workers", fallback=1))
    except (configparser.Error, ValueError):
        return 1
