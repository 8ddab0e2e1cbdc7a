"""The kwsops operations console: launch, watch, read and compare runs from the terminal.

A monitor thread reads the workspace (``Monitor.poll``) twice a second and posts immutable
snapshots; screens watch ``App.snapshot``. Runs are separate ``kwsops run`` processes, so
closing the console never stops a run and opening it again reattaches.

The state the views read, and the requests they make of the app, are ``ConsoleApp``'s
(kwsops/tui/state.py); this module adds the views, the keys, the dialogs and the threads that
keep that state current.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState, get_current_worker

from kwsops.runs.request import RunRequest
from kwsops.text import clean_text
from kwsops.tui.commands import RunCommands
from kwsops.tui.dialogs.confirm import ConfirmDialog
from kwsops.tui.dialogs.help import HelpScreen
from kwsops.tui.dialogs.launch import LaunchScreen
from kwsops.tui.launcher import LaunchError, cancel_run
from kwsops.tui.messages import OpenLog, OpenReport, Problem, SnapshotReady
from kwsops.tui.readers.monitor import Monitor
from kwsops.tui.screens.comparison import ReportScreen
from kwsops.tui.screens.curves import CurvesScreen
from kwsops.tui.screens.dashboard import DashboardScreen
from kwsops.tui.screens.data import WIDE, DataScreen, laid_out
from kwsops.tui.screens.logs import LogsScreen
from kwsops.tui.screens.runs import RunsScreen
from kwsops.tui.state import ConsoleApp
from kwsops.tui.workers import failure_text

VIEWS = {
    "dashboard": "the stage DAG, the active run, recent runs",
    "logs": "follow a run's log",
    "report": "the rendered comparison report",
    "runs": "every run, its params and outcome",
    "data": "per-label counts and rejected files from the manifest",
    "curves": "validation accuracy and loss by epoch, per fold",
}
BLOCKED_IN_DIALOGS = {"switch_mode", "launch", "cancel_run", "rerun_failed", "help", "quit"}


class KwsApp(ConsoleApp):
    CSS_PATH = "app.tcss"
    TITLE = "kwsops"
    MODES = {
        "dashboard": DashboardScreen,
        "logs": LogsScreen,
        "report": ReportScreen,
        "runs": RunsScreen,
        "data": DataScreen,
        "curves": CurvesScreen,
    }
    DEFAULT_MODE = "dashboard"
    COMMANDS = App.COMMANDS | {RunCommands}
    # the views' number keys are on every screen's top line (TopBar), not in the footer
    BINDINGS = [
        *(Binding(str(n), f"switch_mode('{mode}')", mode.title(), show=False)
          for n, mode in enumerate(VIEWS, start=1)),
        Binding("s", "launch", "Start run"),
        Binding("c", "cancel_run", "Cancel run"),
        Binding("R", "rerun_failed", "Rerun"),
        Binding("question_mark", "help", "Help", show=False),  # both on the top line
        Binding("q", "quit", "Quit", show=False),
    ]  # fmt: skip

    def __init__(
        self,
        workspace_root: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.5,
        run_command: Sequence[str] | None = None,
    ) -> None:
        super().__init__(workspace_root, clock=clock, run_command=run_command)
        self.poll_interval = poll_interval
        self.sub_title = clean_text(self.workspace.root.name, 40)

    # the monitor thread ----------------------------------------------------------------------
    def on_mount(self) -> None:
        if not self.workspace.is_initialised():
            self.notify(
                f"{self.workspace.root} is not a kwsops workspace yet (no .git or .dvc):"
                f" run `kwsops init {self.workspace.root}` first.",
                severity="warning",
                timeout=10,
            )
        self._monitor()
        self._read_manifest_ahead()
        self._tags_stamp: tuple = ()
        self.set_interval(2.0, self._check_tags)
        self._check_tags()

    @work(thread=True, exit_on_error=False, name="workspace monitor", group="monitor")
    def _monitor(self) -> None:
        worker = get_current_worker()
        monitor = Monitor(self.workspace)
        last_problem = ""
        while not worker.is_cancelled:
            try:
                snapshot = monitor.poll()
                for failure in self.launcher.early_failures():
                    self.post_message(Problem(failure))
                self.post_message(SnapshotReady(snapshot))
                last_problem = ""
            except Exception as exc:  # keep watching: the next poll may well succeed
                problem = f"cannot read the workspace: {exc}"
                if problem != last_problem:
                    self.post_message(Problem(problem))
                last_problem = problem
            deadline = time.monotonic() + self.poll_interval
            while not (worker.is_cancelled or self._wake) and time.monotonic() < deadline:
                worker.cancelled_event.wait(0.05)
            self._wake = False

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot

    def _check_tags(self) -> None:
        from kwsops.tui.dialogs.promote import tags_stamp

        stamp = tags_stamp(self.workspace.root)
        if stamp != self._tags_stamp:
            self._tags_stamp = stamp
            self.refresh_production()

    @work(thread=True, exit_on_error=False, name="manifest read-ahead", group="read-ahead")
    def _read_manifest_ahead(self) -> None:
        """Summarise the manifest before the Data screen asks (it then opens at once), beside
        the monitor's first poll (a 100 000-row manifest: the dashboard's data came ~0.05 s
        later, measured); a problem is the Data screen's to report, when it is opened."""
        with contextlib.suppress(OSError, ValueError):
            summary = self.manifest_summaries.read()
            if summary is not None:
                laid_out(summary, self.size.width >= WIDE)

    def on_problem(self, message: Problem) -> None:
        self.notify(message.text, severity=message.severity, timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure becomes a notification, never a traceback."""
        if event.state == WorkerState.ERROR:
            self.notify(failure_text(event.worker), title="Error", severity="error", timeout=10)

    # navigation ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (isinstance(self.screen, ModalScreen) and action in BLOCKED_IN_DIALOGS)

    async def on_open_log(self, message: OpenLog) -> None:
        await self.switch_mode("logs")
        if isinstance(self.screen, LogsScreen):
            self.screen.open_run(message.run_id)

    async def on_open_report(self, message: OpenReport) -> None:
        await self.switch_mode("report")
        if isinstance(self.screen, ReportScreen):
            self.screen.show(message.path, message.title)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # runs ------------------------------------------------------------------------------------
    def action_launch(self) -> None:
        if self.snapshot and self.snapshot.active:
            run = self.snapshot.focus
            self.notify(
                f"Run {run.run_id if run else ''} is active: wait for it or cancel it (c).",
                severity="warning",
            )
            return
        self.push_screen(LaunchScreen(self.workspace), self._launch)

    def _launch(self, request: RunRequest | None) -> None:
        if request is not None:
            self.start_run(request)

    def action_cancel_run(self) -> None:
        snapshot = self.snapshot
        run = snapshot.focus if snapshot else None
        if not snapshot or not snapshot.active or run is None:
            self.notify("No run is active.", severity="warning")
            return
        if run.origin == "scheduler":
            self.notify(
                "These tasks run under luigid, not a kwsops run: stop their worker there.",
                severity="warning",
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._cancel(run.run_id)

        self.push_screen(
            ConfirmDialog(
                Text.assemble(
                    "Cancel run ",
                    (run.run_id, "bold"),
                    "?\n\nIt gets SIGTERM, stops its tasks "
                    "and marks itself cancelled; finished stages stay done.",
                ),
                yes="Cancel run",
                no="Keep running",
            ),
            answered,
        )

    @work(thread=True, exit_on_error=False, name="cancel run")
    def _cancel(self, run_id: str) -> None:
        try:
            pid = cancel_run(self.workspace, run_id)
        except LaunchError as exc:
            self.post_message(Problem(str(exc), "warning"))
            return
        self.notify(f"Asked run {run_id} to stop (SIGTERM to pid {pid}).")
        self.refresh_now()

    def action_rerun_failed(self) -> None:
        history = self.snapshot.history if self.snapshot else ()
        failed = next((r for r in history if r.status in ("failed", "killed", "cancelled")), None)
        if failed is None:
            self.notify("No failed run to rerun.", severity="warning")
            return
        self.rerun(failed.run_id)

    # command palette -------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # the footer's names, so "start run" finds what the footer calls Start run
        yield SystemCommand(
            "Start run",
            "key s: choose batch sizes, epochs, folds, learning rate and revisions, "
            "then start `kwsops run`",
            self.action_launch,
        )
        yield SystemCommand(
            "Cancel run", "key c: stop the active run (asks first)", self.action_cancel_run
        )
        yield SystemCommand(
            "Rerun failed",
            "key R: the last failed run again, with the same command and parameters",
            self.action_rerun_failed,
        )
        for number, (mode, help_text) in enumerate(VIEWS.items(), start=1):
            yield SystemCommand(
                f"view: {mode}", f"key {number}: {help_text}", lambda m=mode: self.switch_mode(m)
            )
        yield SystemCommand("help: keys", "Every key binding", self.action_help)
        yield from self._screen_commands(screen)
        yield from super().get_system_commands(screen)

    def _screen_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The shown screen's own keys (search, filter, contents, ...) as palette entries,
        the ones the footer leaves out for room too."""
        mode = next((name for name, kind in self.MODES.items() if type(screen) is kind), "")
        for node in (screen, screen.focused):
            for binding in getattr(type(node), "BINDINGS", []) if node is not None else []:
                if isinstance(binding, Binding) and binding.description:
                    yield SystemCommand(
                        f"{mode}: {binding.description.lower()}",
                        f"key {binding.key_display or binding.key.split(',')[0]}",
                        partial(self.run_action, binding.action, node),
                    )


def main(workspace_root: Path | None = None, **run_options: Any) -> int:
    """`kwsops tui`: run the console on ``workspace_root`` (default: $KWSOPS_WORKSPACE or cwd).
    The exit code is the app's: a crash is never 0."""
    app = KwsApp(workspace_root)
    app.run(**run_options)
    return app.return_code or 0


if __name__ == "__main__":
    main()
