"""Console dashboard: the stage DAG, the active run, recent runs; live from events."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from kwsops.runs.folder import RunPaths
from tests.helpers.tui import SIZE, cells, make_app, run_async, stage_states, wait_for
from tests.helpers.tui_workspace import RUN_ACTIVE, RUN_FAILED, RUN_OK, append_event, task_id


class TestDashboard:
    @run_async
    async def test_shows_the_active_run_and_its_dag(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            assert app.snapshot.active and app.snapshot.focus.run_id == RUN_ACTIVE
            states = stage_states(app)
            assert states["VersionInput"] == "up to date"
            assert states["Preprocess"] == "done" and states["Validate"] == "pending"
            assert states["TrainFold ×3"] == "running"
            assert states["└ bs 32 · fold 0"] == "running"
            table = app.screen.query_one("#stages", DataTable)
            row = [cells(table, i) for i in range(table.row_count) if "bs 32" in cells(table, i)[0]]
            assert "epoch 2/3" in row[0][4] and "val acc 0.734" in row[0][4]
            banner = str(app.screen.query_one("#run-banner").render())
            assert "ACTIVE RUN" in banner and "elapsed 12m 34s" in banner
            recent = app.screen.query_one("#recent", DataTable)
            assert [cells(recent, i)[0] for i in range(3)] == [RUN_ACTIVE, RUN_FAILED, RUN_OK]
            assert cells(recent, 2)[2].endswith("ok") and cells(recent, 2)[4] == "0.917"

    @run_async
    async def test_follows_events_as_they_are_written(self, ws: Path) -> None:
        paths = RunPaths(ws / "reports" / "runs" / RUN_ACTIVE)
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            running = task_id("TrainFold", batch_size=32, fold=0)
            append_event(
                paths,
                "task_done",
                task=running,
                family="TrainFold",
                duration=31.0,
                detail="3 epochs · val_acc 0.85",
                summary={"val_accuracy": 0.85},
            )
            nxt = task_id("TrainFold", batch_size=32, fold=1)
            append_event(
                paths,
                "task_started",
                task=nxt,
                family="TrainFold",
                params={"batch_size": "32", "fold": "1"},
            )
            append_event(
                paths,
                "task_progress",
                task=nxt,
                family="TrainFold",
                done=1,
                total=3,
                detail="epoch 1/3",
                metrics={"val_accuracy": 0.5},
            )
            await wait_for(pilot, lambda: stage_states(app).get("└ bs 32 · fold 1") == "running")
            states = stage_states(app)
            assert states["├ bs 32 · fold 0"] == "done"
            assert states["TrainFold ×4"] == "running"
            append_event(
                paths,
                "task_failed",
                task=nxt,
                family="TrainFold",
                duration=3.0,
                error="RuntimeError: out of memory",
            )
            await wait_for(pilot, lambda: stage_states(app).get("TrainFold ×4") == "failed")
            table = app.screen.query_one("#stages", DataTable)
            details = [cells(table, i)[4] for i in range(table.row_count)]
            assert "RuntimeError: out of memory" in details

    @run_async
    async def test_no_runs_yet(self, tmp_path: Path) -> None:
        root = tmp_path / "empty"
        root.mkdir()
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            assert "No runs yet" in str(app.screen.query_one("#run-banner").render())
            assert set(stage_states(app).values()) == {"pending"}
            assert any("not a kwsops workspace" in n.message for n in app._notifications)

    @run_async
    async def test_corrupt_events_show_an_error_not_a_crash(self, ws: Path) -> None:
        events = ws / "reports" / "runs" / RUN_ACTIVE / "events.jsonl"
        with open(events, "a") as handle:
            handle.write('{"event": "task_progress", "task": 1\nnot json at all\n')
            handle.write(
                '{"event": "task_progress", "task": "x", "family": "Train", '
                '"done": "many", "total": null, "params": 5}\n'
            )
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            errors = app.screen.query_one("#run-errors")
            assert errors.display and "bad event" in str(errors.render())
            assert stage_states(app)["Preprocess"] == "done"  # the good events still count
            await pilot.press("2", "1")
            assert app.is_running
