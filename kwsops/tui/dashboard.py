"""Dashboard: the active (or last) run, its stage DAG with live task states, recent runs."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from kwsops.tui import formatting as fmt
from kwsops.tui.messages import OpenLog
from kwsops.tui.monitor import RunSummary, Snapshot
from kwsops.tui.rows import TaskRow

STAGE_COLUMNS = (
    ("stage", "Stage", 22),
    ("state", "State", 12),
    ("progress", "Progress", 14),
    ("duration", "Time", 7),
    ("detail", "Detail", None),
)
RECENT_COLUMNS = (
    ("run", "Run", 20),
    ("origin", "From", 6),
    ("status", "Status", 12),
    ("duration", "Time", 8),
    ("accuracy", "Best acc", 8),
    ("params", "Params", None),
)
RECENT_COUNT = 6


def stage_cells(row: TaskRow, last_child: bool) -> tuple:
    if row.child:
        label = Text(
            f"  {'└' if last_child else '├'} {row.label}",
            style="dim" if row.state in ("pending", "not run") else "",
        )
    else:
        label = Text(row.label, style="bold" if row.state == "running" else "")
    return (
        label,
        fmt.state_text(row.state),
        fmt.progress_bar(row.done, row.total),
        fmt.duration(row.duration),
        row.detail,
    )


def recent_cells(run: RunSummary) -> tuple:
    return (
        run.run_id,
        run.origin,
        fmt.state_text(run.status),
        fmt.duration(run.duration),
        fmt.accuracy(run.best_accuracy),
        fmt.params_text(run.params or {}),
    )


def set_columns(table: DataTable, columns: tuple, width: int) -> None:
    """(Re)create the columns; a column of width None takes what is left of ``width``, so the
    table never needs a horizontal scrollbar for its last column."""
    fixed = sum(w + 2 * table.cell_padding for _, _, w in columns if w)
    flexible = max(12, width - fixed - 2 * table.cell_padding - 2)
    table.clear(columns=True)
    for key, title, column_width in columns:
        table.add_column(title, key=key, width=column_width or flexible)


def fill_table(table: DataTable, keys: list[str], cells: list[tuple]) -> None:
    """Update in place when the rows are the same ones, else rebuild keeping the cursor."""
    current = [row.value for row in table.rows]
    if current == keys:
        for key, row in zip(keys, cells, strict=True):
            for column, value in zip(table.columns, row, strict=True):
                if table.get_cell(key, column) != value:
                    table.update_cell(key, column, value)
        return
    cursor, scroll = table.cursor_row, table.scroll_y
    table.clear()
    for key, row in zip(keys, cells, strict=True):
        table.add_row(*row, key=key)
    if keys:
        table.move_cursor(row=min(cursor, len(keys) - 1), animate=False, scroll=False)
    table.scroll_to(y=scroll, animate=False)


class DashboardScreen(Screen):
    def compose(self) -> ComposeResult:
        yield Header(icon="◉")
        with Vertical(id="dashboard"):
            yield Static(id="run-banner")
            yield Static(id="run-errors")
            yield DataTable(id="stages", cursor_type="row", zebra_stripes=True)
            yield Static("Recent runs", classes="section-title")
            yield DataTable(id="recent", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self._layout_columns(self.app.size.width)
        self.watch(self.app, "snapshot", self.show_snapshot)
        self.set_interval(1.0, self._tick)

    def _layout_columns(self, width: int) -> None:
        for table_id, columns in (("#stages", STAGE_COLUMNS), ("#recent", RECENT_COLUMNS)):
            set_columns(self.query_one(table_id, DataTable), columns, width)

    def on_resize(self, event: events.Resize) -> None:
        self._layout_columns(event.size.width)
        self.show_snapshot(getattr(self.app, "snapshot", None))

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            self.query_one("#run-banner", Static).update("Reading the workspace…")
            return
        self._tick()
        errors = self.query_one("#run-errors", Static)
        errors.update("\n".join(f"⚠ {e}" for e in snapshot.errors[-2:]))
        errors.display = bool(snapshot.errors)
        rows = list(snapshot.rows)
        last_child = [
            r.child and (i + 1 == len(rows) or not rows[i + 1].child) for i, r in enumerate(rows)
        ]
        fill_table(
            self.query_one("#stages", DataTable),
            [r.key for r in rows],
            [stage_cells(r, last) for r, last in zip(rows, last_child, strict=True)],
        )
        recent = list(snapshot.history[:RECENT_COUNT])
        fill_table(
            self.query_one("#recent", DataTable),
            [r.run_id for r in recent],
            [recent_cells(r) for r in recent],
        )

    def _tick(self) -> None:
        self.query_one("#run-banner", Static).update(self.banner())

    def banner(self) -> Text:
        snapshot = getattr(self.app, "snapshot", None)
        if snapshot is None or snapshot.focus is None:
            return Text.from_markup(
                "[b]No runs yet.[/b] Press [b reverse] s [/] to start one "
                "(or run [b]kwsops run[/b] in a shell)."
            )
        run = snapshot.focus
        text = Text()
        if snapshot.active:
            elapsed = self.app.clock() - run.started if run.started else None
            text.append("▶ ACTIVE RUN ", style="bold black on yellow")
            text.append(f" {run.run_id}", style="bold")
            text.append(f"  elapsed {fmt.duration(elapsed)}", style="yellow")
        else:
            text.append(" LAST RUN ", style="bold reverse")
            text.append(f" {run.run_id}  ", style="bold")
            text.append_text(fmt.state_text(run.status))
            if run.duration is not None:
                text.append(f"  took {fmt.duration(run.duration)}")
            if run.best_accuracy is not None:
                text.append(f"  best accuracy {fmt.accuracy(run.best_accuracy)}", style="green")
        text.append(
            f"\nfrom {run.origin or '?'}  ·  {fmt.params_text(run.params or {})}", style="dim"
        )
        if snapshot.scheduler:
            text.append(f"  ·  {snapshot.scheduler}", style="dim")
        return text

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a recent run opens its log; on a stage, the shown run's log."""
        if event.data_table.id == "recent":
            self.post_message(OpenLog(event.row_key.value))
        else:
            snapshot = getattr(self.app, "snapshot", None)
            focus = snapshot.focus if snapshot else None
            self.post_message(
                OpenLog(None if snapshot and snapshot.active else (focus.run_id if focus else None))
            )
