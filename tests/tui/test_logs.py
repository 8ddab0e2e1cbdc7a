"""Console logs: follow, scroll back, search, filter, switch runs."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from kwsops.tui.dialogs.run_picker import RunPicker
from kwsops.tui.widgets.logview import LogView
from tests.helpers.tui import SIZE, make_app, run_async, wait_for
from tests.helpers.tui_workspace import NOW, RUN_ACTIVE, RUN_FAILED, RUN_OK, log_line


class TestLogs:
    @run_async
    async def test_follows_the_active_runs_log(self, ws: Path) -> None:
        log = ws / "reports" / "runs" / RUN_ACTIVE / "run.log"
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("2")
            view = app.screen.query_one(LogView)
            await wait_for(pilot, lambda: view.line_count == 14)
            assert view.path == log and view.follow
            for n in range(60):
                log_line(log, NOW + n, f"TrainFold epoch 3/3 batch {n}")
            await wait_for(pilot, lambda: view.line_count == 74)
            await wait_for(pilot, lambda: view.scroll_y == view.max_scroll_y > 0)  # at the end
            await pilot.press("pageup")
            assert not view.follow
            log_line(log, NOW, "one more")
            await wait_for(pilot, lambda: view.line_count == 75)
            assert view.scroll_y < view.max_scroll_y  # paused: it stays where the person is
            await pilot.press("end")
            await wait_for(pilot, lambda: view.follow and view.scroll_y == view.max_scroll_y)

    @run_async
    async def test_search_filter_and_other_runs(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("2")
            view = app.screen.query_one(LogView)
            await wait_for(pilot, lambda: view.line_count == 14)
            await pilot.press("f", *"done", "enter")
            await wait_for(pilot, lambda: view.filtered is not None and len(view.filtered) == 6)
            assert all("done" in view.index.line(n) for n in view.filtered)
            await pilot.press("escape")
            assert view.filtered is None
            await pilot.press("slash", *"trainfold", "enter")
            await wait_for(pilot, lambda: view.current is not None)
            first = view.current
            assert "TrainFold" in view.index.line(first)
            await pilot.press("n")
            await wait_for(pilot, lambda: view.current != first)
            assert view.current > first and not view.follow
            await pilot.press("N")
            await wait_for(pilot, lambda: view.current == first)
            await pilot.press("o")
            assert isinstance(app.screen, RunPicker)
            await pilot.press("down", "enter")  # the second newest: the failed run
            await wait_for(pilot, lambda: view.path and RUN_FAILED in str(view.path))
            await wait_for(pilot, lambda: view.line_count > 0)
            assert any("ERROR" in line for line in view.index.lines(0, 100))
            await pilot.press("a")
            assert RUN_ACTIVE in str(view.path)

    @run_async
    async def test_open_a_past_runs_log_from_runs(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("4")
            table = app.screen.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count == 3)
            await pilot.press("down", "down", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen.query(LogView).first(), LogView))
            view = app.screen.query_one(LogView)
            assert RUN_OK in str(view.path)
            await wait_for(pilot, lambda: view.line_count > 10)

    @run_async
    async def test_a_log_indexed_in_many_steps_ends_up_whole(self, ws: Path, monkeypatch) -> None:
        monkeypatch.setattr("kwsops.tui.widgets.logview.STEP_BYTES", 4096)
        log = ws / "reports" / "runs" / RUN_ACTIVE / "run.log"
        with open(log, "a") as handle:
            handle.writelines(f"line {n} of a long training log\n" for n in range(5000))
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("2")
            view = app.screen.query_one(LogView)
            await wait_for(pilot, lambda: view.fraction == 1 and view.line_count == 5014)
            await wait_for(pilot, lambda: view.follow and view.scroll_y == view.max_scroll_y)
            assert view.index.line(5013) == "line 4999 of a long training log"
