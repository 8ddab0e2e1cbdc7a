"""What a stage's end says: a cancelled task reads cancelled (not failed), and training says
the epochs its folds ran, and that they stopped early, not the epochs planned."""

from __future__ import annotations

from pathlib import Path

import luigi
import pytest

from kwsops.config import TrainSettings
from kwsops.runs.events import RUN_DIR_ENV, read_events
from kwsops.runs.state import RunState
from kwsops.tui.readers.rows import task_rows
from tasks.base import KwsTask
from tasks.process import TaskCancelled


class CancelledStage(KwsTask):
    def complete(self) -> bool:
        return False

    def run(self) -> None:
        raise TaskCancelled("cancelled by SIGTERM")


def test_a_cancelled_stage_is_recorded_and_shown_as_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.events  # noqa: F401  (registers the event handlers)

    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    luigi.build([CancelledStage()], local_scheduler=True, workers=1, log_level="ERROR")
    events = read_events(tmp_path / "events.jsonl").events
    failed = [e for e in events if e["event"] == "task_failed"]
    assert failed and failed[0]["cancelled"] is True
    state = RunState().apply_all(events)
    assert [t.status for t in state.tasks.values()] == ["cancelled"] and state.failed() == []
    rows = task_rows(state, {}, "cancelled")
    assert [r.state for r in rows if r.family == "CancelledStage"] == ["cancelled"]


def test_training_says_the_epochs_run_and_stopped_early() -> None:
    from kwsops.pipeline.train import epochs_fields, epochs_phrase

    settings = TrainSettings(batch_size=16, epochs=80)
    assert epochs_phrase([15, 14], 80) == "15, 14 of 80 epochs, stopped early"
    assert epochs_phrase([80, 80], 80) == "80 epochs each"
    assert epochs_fields([15, 80], settings) == {
        "epochs": [15, 80],
        "epochs_planned": 80,
        "stopped_early": True,
    }
