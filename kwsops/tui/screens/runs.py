"""Runs: every run folder under reports/runs (kept across restarts), filtered by outcome and
sorted by any column; the selected run's full params and failure reason below the table;
two runs compared side by side."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from kwsops import states
from kwsops.runs.folder import RunPaths
from kwsops.runs.pages import load_run
from kwsops.runs.request import params_line
from kwsops.runs.show import RUN_COLUMNS, compare_runs, sort_runs
from kwsops.text import rich_text
from kwsops.tui import formatting as fmt
from kwsops.tui.dialogs.compare import CompareDialog
from kwsops.tui.messages import OpenLog, OpenReport
from kwsops.tui.readers.monitor import RunSummary, Snapshot
from kwsops.tui.state import console_app
from kwsops.tui.widgets.tables import fill_table, set_columns
from kwsops.tui.widgets.topbar import TopBar

# the run id is its start time, so no Started column; the reason shows below at any width
WIDTHS = {"run": 20, "kind": 8, "status": 14, "duration": 7, "accuracy": 8, "params": None}
WIDE_EXTRA = {"reason": 36}  # from 120 columns
FILTERS = ("all", *states.RUN_STATES)
SORTS = tuple(key for key, *_ in RUN_COLUMNS)


def columns_for(width: int) -> tuple:
    shown = dict(WIDTHS, **(WIDE_EXTRA if width >= 120 else {}))
    return tuple((key, title, shown[key]) for key, title, _ in RUN_COLUMNS if key in shown)


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_log", "Log", show=False),
        Binding("m", "open_report", "Report"),
        Binding("f", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("O", "sort(True)", "Reverse", show=False),
        Binding("space", "mark", "Mark", show=False),  # the title line says so
        Binding("d", "compare", "Compare"),
        Binding("w", "browser", "Web", show=False),
        Binding("R", "rerun", "Rerun"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status_filter = "all"
        self.sort_column = "run"
        self.reverse = False
        self.marked: str | None = None
        self.shown: list[RunSummary] = []
        self.columns: tuple = ()

    def compose(self) -> ComposeResult:
        yield TopBar("runs")
        yield Static(id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="run-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._layout(self.app.size.width)
        self.watch(self.app, "snapshot", self.show_snapshot)
        self.watch(self.app, "production",
                   lambda _: self.show_snapshot(console_app(self.app).snapshot))  # fmt: skip
        self.query_one(DataTable).focus()

    def production_run(self) -> str | None:
        """The run whose models are the production version (marked ★)."""
        production = console_app(self.app).production
        return production.run_id if production is not None else None

    def _layout(self, width: int) -> None:
        self.columns = columns_for(width)
        self.params_width = set_columns(self.query_one(DataTable), self.columns, width)

    def on_resize(self, event: events.Resize) -> None:
        if columns_for(event.size.width) != self.columns:
            self._layout(event.size.width)
        self.show_snapshot(console_app(self.app).snapshot)

    def cells(self, run: RunSummary) -> tuple:
        found = []
        for key, *_ in self.columns:
            if key == "params":
                found.append(fmt.params_fit(run.params or {}, self.params_width))
            elif key == "status":
                found.append(fmt.state_text(run.status))
            elif key == "run" and run.run_id == self.marked:
                found.append(Text(f"{run.run_id}", style="bold reverse"))
            elif key == "run" and run.run_id == self.production_run():
                found.append(Text.assemble(run.run_id, (" ★", "bold green")))
            else:
                found.append(run.cell(key))
        return tuple(found)

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        runs = list(snapshot.history) if snapshot else []
        if self.status_filter != "all":
            runs = [run for run in runs if run.status == self.status_filter]
        self.shown = sort_runs(runs, self.sort_column, reverse=self.reverse)
        fill_table(self.query_one(DataTable), [r.run_id for r in self.shown],
                   [self.cells(r) for r in self.shown])  # fmt: skip
        total = len(snapshot.history) if snapshot else 0
        title = self.query_one("#runs-title", Static)
        if not total:
            title.update(Text("No runs yet. Press s to start one; its folder appears here."))
        else:
            order = "↑" if self.reverse else "↓"
            title.update(
                Text.assemble(
                    (f"{len(self.shown)} of {total} runs", "bold"),
                    (f" · outcome: {self.status_filter} (f) · sort: {self.sort_column} {order} "
                     "(o, O) · space marks, d compares", "dim"),
                )
            )  # fmt: skip
        self._show_detail()

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _show_detail(self) -> None:
        """The selected run in full: its params (never cut) and why it failed."""
        run = next((r for r in self.shown if r.run_id == self.selected), None)
        detail = self.query_one("#run-detail", Static)
        if run is None:
            detail.update("")
            return
        text = Text.assemble((run.run_id, "bold"), f" {run.kind} from {run.origin or '?'}: ")
        text.append_text(rich_text(params_line(run.params or {}), limit=400))
        rerun_of = (run.params or {}).get("rerun_of")
        if rerun_of:
            text.append_text(rich_text(f" · rerun of {rerun_of}", "dim", 80))
        if run.best_revision:
            text.append_text(rich_text(f" · best {run.best_revision}", "green", 120))
        if run.reason:
            text.append("\n").append_text(rich_text(run.reason, "red", 600))
        detail.update(text)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(OpenLog(event.row_key.value))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's title sorts by it (again: the other way)."""
        column = str(event.column_key.value)
        self.reverse = not self.reverse if column == self.sort_column else False
        self.sort_column = column
        self.show_snapshot(console_app(self.app).snapshot)

    def action_filter(self) -> None:
        self.status_filter = FILTERS[(FILTERS.index(self.status_filter) + 1) % len(FILTERS)]
        self.show_snapshot(console_app(self.app).snapshot)

    def action_sort(self, reverse: bool = False) -> None:
        if reverse:
            self.reverse = not self.reverse
        else:
            self.sort_column = SORTS[(SORTS.index(self.sort_column) + 1) % len(SORTS)]
        self.show_snapshot(console_app(self.app).snapshot)

    def action_mark(self) -> None:
        run_id = self.selected
        self.marked = None if run_id == self.marked else run_id
        self.show_snapshot(console_app(self.app).snapshot)

    def action_compare(self) -> None:
        """The marked run against the selected one (without a mark: the selected against the
        run below it)."""
        first, second = self.marked, self.selected
        if second is None:  # the filter shows no run
            self.notify("No run shown to compare: press f for another filter.")
            return
        if first is None or first == second:
            ids = [r.run_id for r in self.shown]
            if ids.index(second) + 1 >= len(ids):
                self.notify("Mark a run with space, then select another and press d.")
                return
            first, second = second, ids[ids.index(second) + 1]
        runs = console_app(self.app).workspace.runs_dir
        rows = compare_runs(load_run(RunPaths(runs / first)), load_run(RunPaths(runs / second)))
        self.app.push_screen(CompareDialog(first, second, rows))

    def action_open_log(self) -> None:
        if self.selected:
            self.post_message(OpenLog(self.selected))

    def action_open_report(self) -> None:
        run_id = self.selected
        if run_id is None:
            return
        report = RunPaths(console_app(self.app).workspace.runs_dir / run_id).report_md
        if report.exists():
            self.post_message(OpenReport(report, f"Report of run {run_id}"))
        else:
            self.notify(f"Run {run_id} wrote no report.md; showing the comparison report.")
            self.post_message(OpenReport(None))

    def action_browser(self) -> None:
        if self.selected:
            console = console_app(self.app)
            console.open_in_browser(
                RunPaths(console.workspace.runs_dir / self.selected).report_html
            )

    def action_rerun(self) -> None:
        if self.selected:
            console_app(self.app).rerun(self.selected)
