"""Console actions: launch, rerun, cancel, help, the command palette."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input, SelectionList, Static

from kwsops.procs import identity
from kwsops.tui.dialogs.confirm import ConfirmDialog
from kwsops.tui.dialogs.help import HelpScreen
from kwsops.tui.dialogs.launch import LaunchScreen
from kwsops.tui.state import console_app
from kwsops.tui.widgets.logview import LogView
from tests.helpers.tui import (
    SIZE,
    launched_argv,
    make_app,
    run_async,
    wait_for,
    wait_for_palette,
)
from tests.helpers.tui_workspace import RUN_ACTIVE, RUN_FAILED, RUN_OK


class TestLaunch:
    @run_async
    async def test_launch_form_starts_kwsops_run(self, ws: Path, fake_run) -> None:
        for name in ("status.json",):  # no active run: the form may start one
            (ws / "reports" / "runs" / RUN_ACTIVE / name).unlink()
        app = make_app(ws, run_command=fake_run)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and not app.snapshot.active)
            await pilot.press("s")
            assert isinstance(app.screen, LaunchScreen)
            await pilot.pause()
            app.screen.query_one("#batch-add", Input).focus()
            await pilot.press(*"128", "enter")
            batches = app.screen.query_one("#batch-sizes", SelectionList)
            assert sorted(batches.selected) == [16, 32, 128]  # the last run's, and the new one
            await pilot.click("#batch-sizes")
            batches.select(64)
            batches.deselect(64)
            epochs = app.screen.query_one("#epochs", Input)
            assert epochs.value == "3"  # from the last run's params.json
            epochs.value = "2"
            app.screen.query_one("#revision-add", Input).focus()
            await pilot.press(*"git:abc123:batch_16", "enter")
            await pilot.press("ctrl+s")
            assert not isinstance(app.screen, LaunchScreen)
            await wait_for(pilot, lambda: len(app.snapshot.history) == 4)
            argv = launched_argv(ws)
            assert argv[:5] == ["run", "--batch-sizes", "16", "32", "128"]
            assert argv[argv.index("--epochs") + 1] == "2"
            assert argv[argv.index("--folds") + 1] == "2"
            assert argv[argv.index("--revisions") + 1] == "git:abc123:batch_16"
            assert argv[-3:] == ["--origin", "tui", "--quiet"]
            # the next form opens with these values
            await pilot.press("s")
            assert sorted(app.screen.query_one("#batch-sizes", SelectionList).selected) == [
                16, 32, 128
            ]  # fmt: skip
            assert app.screen.query_one("#epochs", Input).value == "2"

    @run_async
    async def test_a_long_revision_is_shown_whole_at_80_columns(self, ws: Path, fake_run) -> None:
        """The revision list cuts a row at its width; the highlighted one is shown whole."""
        (ws / "reports" / "runs" / RUN_ACTIVE / "status.json").unlink()
        spec = "clearml:offline-2474e7d6a5b44c1e9f0e1d2c3b4a5968"
        app = make_app(ws, run_command=fake_run)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and not app.snapshot.active)
            await pilot.press("s")
            app.screen.query_one("#revision-add", Input).focus()
            await pilot.press(*spec, "enter")
            revisions = app.screen.query_one("#revisions", SelectionList)
            revisions.focus()
            revisions.highlighted = revisions.option_count - 1
            whole = app.screen.query_one("#revision-whole", Static)
            await wait_for(pilot, lambda: spec in "".join(str(whole.render()).split()))
            assert whole.region.right <= 80  # on screen, folded rather than cut

    @run_async
    async def test_the_form_opens_with_the_last_runs_resolved_values(
        self, ws: Path, fake_run
    ) -> None:
        """Whoever started the last run (here `kwsops run` from a shell), the form opens with
        what it resolved, seed and precision included; a later `luigi --module tasks` run
        records its command line only and is passed over."""
        runs = ws / "reports" / "runs"
        (runs / RUN_ACTIVE / "status.json").unlink()
        resolved = {"kind": "run", "origin": "cli", "batch_sizes": [64], "epochs": 7,
                    "folds": 4, "learning_rate": 0.0005, "seed": 9, "precision": "float32",
                    "revisions": [], "standalone": False}  # fmt: skip
        for run_id, params in (("20231115-021320-dddd", resolved),
                               ("20231115-031320-eeee", {"argv": ["--module", "tasks"]})):  # fmt: skip
            (runs / run_id).mkdir()
            (runs / run_id / "params.json").write_text(json.dumps({"run_id": run_id, **params}))
        app = make_app(ws, run_command=fake_run)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and not app.snapshot.active)
            await pilot.press("s")
            assert isinstance(app.screen, LaunchScreen)
            form = app.screen
            assert sorted(form.query_one("#batch-sizes", SelectionList).selected) == [64]
            shown = {name: form.query_one(f"#{name}").value
                     for name in ("epochs", "folds", "learning-rate", "seed", "precision")}  # fmt: skip
            assert shown == {"epochs": "7", "folds": "4", "learning-rate": "0.0005",
                             "seed": "9", "precision": "float32"}  # fmt: skip
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: not isinstance(app.screen, LaunchScreen))
            await wait_for(pilot, lambda: "--seed" in launched_argv(ws))
            argv = launched_argv(ws)
            assert argv[argv.index("--seed") + 1] == "9"
            assert argv[argv.index("--precision") + 1] == "float32"

    @run_async
    async def test_bad_values_are_refused_in_place(self, ws: Path, fake_run) -> None:
        (ws / "reports" / "runs" / RUN_ACTIVE / "status.json").unlink()
        app = make_app(ws, run_command=fake_run)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("s")
            app.screen.query_one("#folds", Input).value = "1"
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, LaunchScreen)
            assert any("folds 1: must be an integer from 2 to 100" in n.message
                       for n in app._notifications)  # fmt: skip
            app.screen.query_one("#revision-add", Input).focus()
            await pilot.press(*"nonsense", "enter")
            assert any("is not a revision" in n.message for n in app._notifications)
            await pilot.press("escape")
            assert not isinstance(app.screen, LaunchScreen)

    @run_async
    async def test_no_second_run_while_one_is_active(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("s")
            assert not isinstance(app.screen, LaunchScreen)
            assert any("is active" in n.message for n in app._notifications)

    @run_async
    async def test_rerun_a_failed_run_in_one_key(self, ws: Path, fake_run) -> None:
        (ws / "reports" / "runs" / RUN_ACTIVE / "status.json").unlink()
        app = make_app(ws, run_command=fake_run)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("R")
            await wait_for(pilot, lambda: len(app.snapshot.history) == 4)
            argv = launched_argv(ws)  # `kwsops rerun` repeats what params.json recorded
            assert argv[:2] == ["rerun", RUN_FAILED] and argv[-3:] == ["--origin", "tui", "--quiet"]

    @run_async
    async def test_a_run_that_cannot_start_is_reported(self, ws: Path) -> None:
        (ws / "reports" / "runs" / RUN_ACTIVE / "status.json").unlink()
        command = [sys.executable, "-c", "import sys; sys.exit('kwsops: bad flag --revisions')"]
        app = make_app(ws, run_command=command)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("R")
            await wait_for(
                pilot,
                lambda: any(
                    "did not start: kwsops: bad flag" in n.message for n in app._notifications
                ),
            )


class TestCancel:
    @run_async
    async def test_cancel_asks_then_sends_sigterm(self, ws: Path) -> None:
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            status = ws / "reports" / "runs" / RUN_ACTIVE / "status.json"
            status.write_text(
                json.dumps({**json.loads(status.read_text()), **identity(sleeper.pid)})
            )
            app = make_app(ws)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.active)
                await pilot.press("c")
                assert isinstance(app.screen, ConfirmDialog)
                await pilot.press("n")
                assert sleeper.poll() is None
                await pilot.press("c", "y")
                await wait_for(pilot, lambda: sleeper.poll() is not None)
                assert sleeper.returncode == -15
        finally:
            sleeper.kill()
            sleeper.wait()


class TestKeysAndPalette:
    @run_async
    async def test_help_and_palette(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for wanted in ("Start run", "Cancel run", "view: report", "view: logs", "Rerun failed"):
                assert wanted in titles
            footer = {b.description for _, b, _, _ in app.screen.active_bindings.values() if b.show}
            assert {"Start run", "Cancel run"} <= footer  # the names the palette finds
            await pilot.press("ctrl+p")
            await pilot.press(*"view: data")
            await wait_for_palette(pilot, "view: data")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.current_mode == "data")
            await pilot.press("ctrl+p", *f"logs: run {RUN_OK}")
            await wait_for_palette(pilot, f"logs: run {RUN_OK}")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.current_mode == "logs")
            assert RUN_OK in str(app.screen.query_one(LogView).path)
            await pilot.press("ctrl+p", *"cancel run")  # as the footer names it
            await wait_for_palette(pilot, "cancel run")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))

    @run_async
    async def test_screen_keys_are_quiet_inside_dialogs(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark", "3", "q")
            assert app.current_mode == "dashboard" and app.is_running

    @run_async
    async def test_the_shown_screens_keys_are_in_the_palette(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("2")
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for wanted in ("logs: search", "logs: filter", "logs: other", "logs: follow"):
                assert wanted in titles
            await pilot.press("ctrl+p", *"logs: filter")
            await wait_for_palette(pilot, "logs: filter")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen.query_one("#log-query", Input).has_focus)

    @run_async
    async def test_a_failing_worker_becomes_a_notification(self, ws: Path) -> None:
        report = ws / "reports" / "comparison_versions.md"
        report.unlink()
        report.mkdir()  # reading it raises IsADirectoryError inside the report worker
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await wait_for(
                pilot, lambda: any("report read failed" in n.message for n in app._notifications)
            )
            assert app.is_running


class TestFollowAndExit:
    @run_async
    async def test_logs_follow_a_run_started_here_without_a_key(self, ws: Path, fake_run) -> None:
        (ws / "reports" / "runs" / RUN_ACTIVE / "status.json").unlink()
        app = make_app(ws, run_command=fake_run)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("2")
            logs = app.screen
            logs.open_run(RUN_OK)  # reading an older run's log
            assert not logs.following_active
            await pilot.press("s")
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: len(app.snapshot.history) == 4)
            started = launched_argv(ws)[launched_argv(ws).index("--run-id") + 1]
            await wait_for(pilot, lambda: logs.run_id == started)
            assert logs.following_active
            assert app.follow_run_id is None  # the Logs view asked the app to stop following

    def test_views_reach_the_apps_state_through_one_typed_accessor(self, ws: Path) -> None:
        app = make_app(ws)
        assert console_app(app) is app
        with pytest.raises(TypeError, match="not the kwsops console"):
            console_app(App())
        with pytest.raises(AttributeError):
            app.follow_run_id = "R1"  # type: ignore[misc]  # read-only: a view asks the app


def test_a_crash_in_the_console_never_exits_0(ws: Path) -> None:
    from kwsops.tui.app import main

    async def crash(pilot) -> None:
        await pilot.pause()
        pilot.app.call_later(lambda: 1 / 0)  # any unhandled error inside the app
        deadline = time.monotonic() + 10
        while pilot.app.return_code is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the app is exiting: no pilot.pause, nothing to idle

    assert main(ws, headless=True, auto_pilot=crash) != 0

    async def quit_cleanly(pilot) -> None:
        await pilot.pause()
        await pilot.press("q")

    assert main(ws, headless=True, auto_pilot=quit_cleanly) == 0
