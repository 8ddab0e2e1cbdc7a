"""The console against the real pipeline: `kwsops init`, tiny demo data, a run launched from
the Launch screen, its tasks turning done on the dashboard, its log, a cancelled run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input, SelectionList

from kwsops.tui.app import KwsApp
from kwsops.tui.dialogs.launch import LaunchScreen
from kwsops.tui.widgets.logview import LogView
from kwsops.versioning.runner import tool
from tests.helpers.tui import SIZE, run_async, stage_states, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def kwsops(*args: str, cwd: Path) -> None:
    subprocess.run([tool("kwsops"), *args], cwd=cwd, check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e") / "ws"
    kwsops("init", str(root), cwd=root.parent)
    kwsops("demo-data", "--per-label", "6", "--quiet", cwd=root)
    return root


async def launch(app: KwsApp, pilot, batch_size: int, epochs: str) -> str:
    """Start a run from the Launch screen; returns its run id once it is the active run."""
    known = {run.run_id for run in app.snapshot.history}
    await pilot.press("s")
    assert isinstance(app.screen, LaunchScreen)
    batches = app.screen.query_one("#batch-sizes", SelectionList)
    batches.deselect_all()
    batches.select(batch_size)
    app.screen.query_one("#epochs", Input).value = epochs
    app.screen.query_one("#folds", Input).value = "2"
    await pilot.press("ctrl+s")
    await wait_for(
        pilot,
        lambda: (
            app.snapshot.focus and app.snapshot.focus.run_id not in known and app.snapshot.active
        ),
        timeout=60,
    )
    return app.snapshot.focus.run_id


@run_async
async def test_launch_watch_read_cancel(demo_ws: Path) -> None:
    app = KwsApp(demo_ws, poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None)
        run_id = await launch(app, pilot, 16, "1")
        seen_running = set()

        def finished() -> bool:
            states = stage_states(app)
            seen_running.update(k for k, v in states.items() if v == "running")
            return not app.snapshot.active and app.snapshot.history[0].run_id == run_id

        await wait_for(pilot, finished, timeout=600)
        states = stage_states(app)
        for family in ("Preprocess", "MakeSpectrograms", "VersionModels"):
            assert states[family] == "done", states
        assert states["└ bs 16"] == "done"  # Train: its two folds trained together
        assert not [k for k in states if k.startswith("TrainFold")], states
        assert states["Validate"] == "done", states
        assert {"Preprocess", "MakeSpectrograms"} & seen_running  # it was watched live
        assert app.snapshot.history[0].status == "ok"

        await pilot.press("2")  # the log of that run
        view = app.screen.query_one(LogView)
        await wait_for(pilot, lambda: view.line_count > 10)
        assert any("Preprocess" in line for line in view.index.lines(0, view.line_count))

        await pilot.press("3")  # the report the run just wrote, rendered
        assert (demo_ws / "reports" / "comparison_versions.md").exists()
        await wait_for(pilot, lambda: app.screen.loaded_text is not None)
        assert "workspace:batch" in app.screen.loaded_text

        await pilot.press("1")
        second = await launch(app, pilot, 32, "3")  # new training: long enough to cancel
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: not app.snapshot.active, timeout=120)
        cancelled = next(r for r in app.snapshot.history if r.run_id == second)
        assert cancelled.status == "cancelled", cancelled

        await pilot.press("4", "down", "enter")  # a past run's log, from the Runs screen
        await wait_for(pilot, lambda: app.current_mode == "logs")
        assert run_id in str(app.screen.query_one(LogView).path)
