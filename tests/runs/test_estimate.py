"""The start dialog's training estimate, from folds trained alone and trained together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kwsops.runs.estimate import estimate_training
from kwsops.workspace import Workspace


def write_fold(ws: Workspace, batch: int, fold: int, seconds: float, stacked: int | None) -> None:
    folder = ws.models_dir / f"batch_{batch}" / f"fold_{fold}"
    folder.mkdir(parents=True)
    metrics = {"batch_size": batch, "seconds": seconds, "epochs_run": 10}
    if stacked is not None:  # older folds lack the field: trained alone
        metrics["stacked_folds"] = stacked
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_folds_trained_together_count_their_share_of_the_wall_time(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert estimate_training(ws, [16], epochs=10, folds=5).seconds is None
    for fold in range(5):  # together: 100 s of wall time for all five, 10 epochs each
        write_fold(ws, 16, fold, 100.0, stacked=5)
    for fold in range(2):  # alone, one worker slot each: 40 s a fold
        write_fold(ws, 32, fold, 40.0, stacked=None)
    for workers in (1, 2):  # stacked tasks use every core whatever the workers
        assert estimate_training(ws, [16], 10, 5, workers).seconds == pytest.approx(100.0)
    assert estimate_training(ws, [32], 10, 5, workers=1).seconds == pytest.approx(200.0)
    assert estimate_training(ws, [32], 10, 5, workers=2).seconds == pytest.approx(100.0)
    both = estimate_training(ws, [16, 32], 10, 5, workers=2)
    assert both.seconds == pytest.approx(200.0) and both.folds_seen == 7
