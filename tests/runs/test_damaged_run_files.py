"""A run folder damaged by hand, a disk error or another tool: every reader shows what it can
and names the damaged fields, and the writer refuses to write such a record."""

from __future__ import annotations

import json

import pytest

from kwsops import exitcodes
from kwsops.runs.events import EventLog, read_events
from kwsops.runs.folder import create_run, list_runs, write_status
from kwsops.runs.pages import load_run
from kwsops.runs.show import RUN_COLUMNS, summarise
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli

GARBAGE_EVENTS = [
    {"event": "run_started", "ts": 1.0, "run_id": "r", "params": {"epochs": 2}},
    {"event": "task_started", "ts": 1.5, "task": "P", "family": "Preprocess", "params": [1]},
    {
        "event": "task_progress",
        "ts": 1.6,
        "task": "P",
        "family": "Preprocess",
        "done": "5",
        "total": 9,
        "detail": {"nested": 1},
    },  # fmt: skip
    {
        "event": "task_done",
        "ts": 2.0,
        "task": "P",
        "family": "Preprocess",
        "duration": "long",
        "detail": 17,
        "summary": "not a dict",
    },  # fmt: skip
    {"event": "task_failed", "ts": "late", "task": "T", "family": "Train", "error": "x"},
    {"event": "task_finished_maybe", "ts": 2.5, "task": "T", "family": "Train"},
    {"event": "run_finished", "ts": 3.0, "status": 5, "exit_code": "one"},
]


def damage_a_run(ws: Workspace) -> str:
    paths = create_run(ws.runs_dir, {"epochs": 2}, "cli")
    text = "\n".join(json.dumps(event) for event in GARBAGE_EVENTS)
    paths.events.write_text(f"{text}\nnot json\n[1, 2]\n\x00\x1b[31m\n")
    status = json.loads(paths.status.read_text())
    status.update(status=7, duration="3.5", exit_code="0", started="yesterday",
                  best_accuracy="high", reason=["a", "list"])  # fmt: skip
    paths.status.write_text(json.dumps(status))
    return paths.run_id


def test_runs_list_show_and_report_show_damaged_fields_as_damaged(workspace: Workspace):
    run_id = damage_a_run(workspace)
    shown = run_cli(workspace, "runs", "show", run_id)
    assert "Traceback" not in shown.stderr
    out = shown.stdout
    assert "exit code damaged, damaged; log:" in out
    assert "status.json: best_accuracy, duration, exit_code, reason, started, status" in out
    assert "damaged event at byte" in out and "bad event at byte" in out
    assert "Preprocess" in out  # what could be read is shown

    listed = run_cli(workspace, "runs")
    assert run_id in listed.stdout and "damaged" in listed.stdout

    paths = list_runs(workspace.runs_dir)[0]
    summary = summarise(paths)
    assert summary.status == "damaged" and summary.duration is None
    assert all(summary.cell(column) is not None for column, _, _ in RUN_COLUMNS)
    report = paths.report_md.read_text()  # rebuilt by `runs show`
    assert "(exit code damaged)" in report and "- damaged: status.json" in report
    assert "damaged" in paths.report_html.read_text()
    state, _, _ = load_run(paths)
    task = state.tasks["P"]
    assert (task.status, task.duration, task.detail, task.summary) == ("done", None, "", {})


def test_reading_keeps_the_good_fields_and_names_the_bad_ones(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in GARBAGE_EVENTS) + "\n")
    batch = read_events(path)
    assert [e["event"] for e in batch.events] == [
        "run_started", "task_started", "task_progress", "task_done", "task_failed", "run_finished"
    ]  # fmt: skip
    done = batch.events[3]
    assert done["damaged"] == ["detail", "duration", "summary"] and "duration" not in done
    assert len(batch.errors) == 6  # five damaged events, one of no known type
    assert "bad event" in batch.errors[-2]


def test_the_writer_refuses_a_field_of_the_wrong_type(tmp_path):
    paths = create_run(tmp_path / "runs", {}, "cli")
    with pytest.raises(ValueError, match="exit_code"):
        write_status(paths, status="ok", exit_code="0")
    with pytest.raises(ValueError, match="duration"):
        EventLog(paths.events).emit("task_done", task="T", family="Train", duration="1 s")
    written = write_status(paths, status="ok", exit_code=exitcodes.OK, duration=1)
    assert written["exit_code"] == 0
