"""Logs: follow the active run's run.log, scroll back, search, filter; any past run's log too."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from kwsops.runs.folder import RunPaths
from kwsops.text import rich_text
from kwsops.tui.dialogs.run_picker import RunPicker
from kwsops.tui.messages import LogFiltered, LogFound, LogIndexed
from kwsops.tui.readers.monitor import Snapshot
from kwsops.tui.state import console_app
from kwsops.tui.widgets.logview import LogView
from kwsops.tui.widgets.topbar import TopBar


class LogsScreen(Screen):
    BINDINGS = [
        Binding("slash", "ask('search')", "Search"),
        Binding("f", "ask('filter')", "Filter"),
        Binding("n", "next_match", "Next", show=False),
        Binding("N", "next_match(True)", "Prev", show=False),
        Binding("escape", "clear", "Clear", show=False),
        Binding("a", "follow_active", "Active"),
        Binding("o", "pick_run", "Other"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_id: str | None = None
        self.following_active = True
        self.search_query = ""
        self._asking = "search"

    def compose(self) -> ComposeResult:
        yield TopBar("logs")
        yield Static(id="log-title")
        yield LogView(id="log")
        yield Input(id="log-query", placeholder="search…")
        yield Static(id="log-status")
        yield Footer(compact=True)

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self.query_one("#log-query", Input).display = False
        self.watch(self.app, "snapshot", self._on_snapshot)
        self.watch(self.view, "follow", lambda _: self._status(), init=False)
        self.view.focus()

    def _on_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        console = console_app(self.app)
        started = console.follow_run_id
        if started and any(run.run_id == started for run in snapshot.history):
            console.stop_following()
            self.following_active = True  # a run started from the console: show its log
        if not self.following_active:
            return
        focus = snapshot.focus
        run_id = focus.run_id if focus and focus.origin != "scheduler" else None
        if run_id != self.run_id or (run_id and self.view.path is None):
            self._show(run_id)

    # which log -------------------------------------------------------------------------------
    def open_run(self, run_id: str | None) -> None:
        """Show ``run_id``'s log, or (None) follow whichever run is active or newest."""
        self.following_active = run_id is None
        if run_id is None:
            snapshot = console_app(self.app).snapshot
            focus = snapshot.focus if snapshot else None
            run_id = focus.run_id if focus and focus.origin != "scheduler" else None
        self._show(run_id)

    def _show(self, run_id: str | None) -> None:
        self.run_id = run_id
        workspace = console_app(self.app).workspace
        path = RunPaths(workspace.runs_dir / run_id).log if run_id else None
        self.view.open(path)
        title = self.query_one("#log-title", Static)
        if path is None:
            title.update(
                Text.assemble("No run log yet — press ", ("s", "bold"), " to start a run.")
            )
        else:
            where = path.relative_to(workspace.root)
            mode = "newest run · o: another" if self.following_active else "a: newest run"
            title.update(
                Text.assemble((f"run {run_id}", "bold"), f" · {mode}  ", (str(where), "dim"))
            )
        self._status()

    def action_follow_active(self) -> None:
        self.open_run(None)

    def action_pick_run(self) -> None:
        snapshot = console_app(self.app).snapshot
        runs = list(snapshot.history) if snapshot else []
        if not runs:
            self.notify("No runs yet.", severity="warning")
            return

        def picked(run_id: str | None) -> None:
            if run_id:
                self.open_run(run_id)

        self.app.push_screen(RunPicker(runs, "Open the log of…"), picked)

    # search and filter -----------------------------------------------------------------------
    def action_ask(self, what: str) -> None:
        self._asking = what
        query = self.query_one("#log-query", Input)
        query.placeholder = (
            "search (Enter: find, n/N: next/previous)"
            if what == "search"
            else ("filter: show only lines containing… (empty: all lines)")
        )
        query.value = self.view.filter_query if what == "filter" else self.search_query
        query.display = True
        query.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.view.focus()
        if self._asking == "filter":
            self.view.set_filter(event.value.strip())
        else:
            self.search_query = event.value
            self.view.current = None
            self.view.search(self.search_query)
        self._status()

    def action_next_match(self, backwards: bool = False) -> None:
        if not self.search_query:
            self.action_ask("search")
            return
        self.view.search(self.search_query, backwards=backwards)

    def action_clear(self) -> None:
        query = self.query_one("#log-query", Input)
        if query.display:
            query.display = False
            self.view.focus()
            return
        self.search_query = ""
        self.view.highlight = ""
        self.view.set_filter("")
        self.view.action_follow()
        self._status()

    # status ----------------------------------------------------------------------------------
    def on_log_indexed(self, _: LogIndexed) -> None:
        self._status()

    def on_log_filtered(self, _: LogFiltered) -> None:
        self._status()

    def on_log_found(self, message: LogFound) -> None:
        if message.line is None:
            self.notify(f"No line matches {message.query!r}.", severity="warning", timeout=3)
        self._status()

    def _status(self) -> None:
        """Lines, following or paused, filter and search (as typed: data, not markup)."""
        view = self.view
        parts = [Text(f"{view.line_count:,} lines")]
        if view.path is not None and not view.path.exists():
            parts = [Text("waiting for the run to write run.log…")]
        parts.append(
            Text("● following", "green") if view.follow
            else Text.assemble(("‖ paused", "yellow"), " (End: follow)")
        )  # fmt: skip
        if view.filter_query:
            shown = len(view.filtered or [])
            parts.append(Text.assemble("filter ", rich_text(view.filter_query, "bold", 60),
                                       f": {shown:,} lines"))  # fmt: skip
        if self.search_query:
            at = f" at line {view.current + 1:,}" if view.current is not None else ""
            parts.append(Text.assemble("search ", rich_text(self.search_query, "bold", 60),
                                       at, (" · n/N: next/previous", "dim")))  # fmt: skip
        if view.fraction < 1:
            parts.append(Text(f"indexing {view.fraction:.0%}", "yellow"))
        self.query_one("#log-status", Static).update(Text("  ·  ").join(parts))
