"""Runs: every run folder under reports/runs (kept across restarts), newest first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from kwsops.runs.folder import RunPaths
from kwsops.tui import formatting as fmt
from kwsops.tui.dashboard import fill_table, set_columns
from kwsops.tui.messages import OpenLog, OpenReport
from kwsops.tui.monitor import RunSummary, Snapshot

COLUMNS = (
    ("run", "Run", 20),
    ("when", "Started", 16),
    ("origin", "From", 6),
    ("status", "Status", 12),
    ("duration", "Time", 8),
    ("accuracy", "Best acc", 8),
    ("batches", "Batch sizes", 11),
    ("epochs", "Epochs", 6),
    ("folds", "Folds", 5),
    ("lr", "LR", 7),
    ("revisions", "Revisions", None),
)


def run_cells(run: RunSummary) -> tuple:
    params = run.params or {}
    batches = ",".join(str(b) for b in params.get("batch_sizes") or [])
    revisions = " ".join(str(r) for r in params.get("revisions") or [])
    return (
        run.run_id,
        fmt.when(run.started),
        run.origin,
        fmt.state_text(run.status),
        fmt.duration(run.duration),
        fmt.accuracy(run.best_accuracy),
        batches,
        str(params.get("epochs", "")),
        str(params.get("folds", "")),
        str(params.get("learning_rate", "")),
        revisions,
    )


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_log", "Log", show=False),
        Binding("m", "open_report", "Report"),
        Binding("R", "rerun", "Rerun"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(icon="◉")
        yield Static(id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        set_columns(table, COLUMNS, max(self.app.size.width, 140))
        self.watch(self.app, "snapshot", self.show_snapshot)
        table.focus()

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        runs = list(snapshot.history) if snapshot else []
        fill_table(
            self.query_one(DataTable), [r.run_id for r in runs], [run_cells(r) for r in runs]
        )
        title = self.query_one("#runs-title", Static)
        if not runs:
            title.update("No runs yet. Press [b]s[/b] to start one; its folder appears here.")
        else:
            done = sum(r.status == "ok" for r in runs)
            title.update(
                f"[b]{len(runs)} runs[/b] [dim]({done} ok) · Enter: log · m: report · "
                "R: rerun with the same parameters[/dim]"
            )

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(OpenLog(event.row_key.value))

    def action_open_log(self) -> None:
        if self.selected:
            self.post_message(OpenLog(self.selected))

    def action_open_report(self) -> None:
        run_id = self.selected
        if run_id is None:
            return
        report = RunPaths(self.app.workspace.runs_dir / run_id).report_md
        if report.exists():
            self.post_message(OpenReport(report, f"Report of run {run_id}"))
        else:
            self.notify(f"Run {run_id} wrote no report.md; showing the comparison report.")
            self.post_message(OpenReport(None))

    def action_rerun(self) -> None:
        if self.selected:
            self.app.rerun(self.selected)
