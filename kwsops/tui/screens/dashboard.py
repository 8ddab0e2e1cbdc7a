"""Dashboard: the active (or last) run, its stage DAG with live task states, recent runs."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from kwsops.compare.wording import short_names
from kwsops.runs.request import kind_of
from kwsops.stages import STAGE_BY_FAMILY
from kwsops.text import rich_text
from kwsops.tui import formatting as fmt
from kwsops.tui.messages import OpenLog
from kwsops.tui.readers.monitor import RunSummary, Snapshot
from kwsops.tui.readers.rows import TaskRow
from kwsops.tui.state import console_app
from kwsops.tui.widgets.tables import fill_table, set_columns
from kwsops.tui.widgets.topbar import TopBar

WIDE = 100  # from here the tables show progress bars and the run's origin
# the Detail column takes what is left and wraps (a row grows); narrow, the stage's count
# goes into it rather than into a column of its own that would cut "864/864 files"
STAGE_COLUMNS = (
    ("stage", "Stage", 21),
    ("state", "State", 12),
    ("progress", "Progress", 20),
    ("duration", "Time", 7),
    ("detail", "Detail", None),
)
NARROW_STAGE_COLUMNS = (
    ("stage", "Stage", 20),
    ("state", "State", 12),
    ("duration", "Time", 7),
    ("detail", "Detail", None),
)
RECENT_COLUMNS = (
    ("run", "Run", 20),
    ("kind", "Command", 8),
    ("status", "Outcome", 12),
    ("duration", "Time", 7),
    ("accuracy", "Best acc", 8),
    ("params", "Params", None),
)
NARROW_RECENT_COLUMNS = (
    ("run", "Run", 20),
    ("kind", "Command", 8),
    ("status", "Outcome", 11),
    ("duration", "Time", 7),
    ("accuracy", "Acc", 5),
    ("params", "Params", None),
)
RECENT_COUNT = 6


SHORT_UNITS = {"revisions": "rev", "epochs": "ep", "step": ""}


def progress_text(row: TaskRow, wide: bool) -> str:
    """``██░░░░ 2/3 revisions``: what the stage counts (a group row counts its tasks); a
    trained task, the epochs its folds ran (``15,14/80 ep``)."""
    stage = STAGE_BY_FAMILY.get(row.family)
    unit = "" if row.group or stage is None else stage.unit
    if not wide:
        unit = SHORT_UNITS.get(unit, unit)
    if row.counted:
        return f"{row.counted} {unit}".rstrip()
    return fmt.progress_bar(row.done, row.total, unit, width=6 if wide else 0)


def detail_text(row: TaskRow, wide: bool) -> Text:
    """The Detail cell, whole (it wraps); narrow, led by the count the Done column showed."""
    detail = row.detail
    if not wide and not row.group and (row.counted or row.total > 1):
        detail = " · ".join(part for part in (progress_text(row, wide), detail) if part)
    return rich_text(detail, "red" if row.state == "failed" else "", 400)


def stage_cells(row: TaskRow, last_child: bool, wide: bool = True) -> tuple:
    if row.child:
        label = Text(
            f"  {'└' if last_child else '├'} {row.label}",
            style="dim" if row.state in ("pending", "not run") else "",
        )
    else:
        label = Text(row.label, style="bold" if row.state == "running" else "")
    state, time = fmt.state_text(row.state), fmt.duration(row.duration)
    if not wide:
        return label, state, time, detail_text(row, wide)
    return label, state, progress_text(row, wide), time, detail_text(row, wide)


def recent_cells(run: RunSummary, params_width: int) -> tuple:
    return (
        run.run_id,
        run.kind,
        fmt.state_text(run.status),
        fmt.duration(run.duration),
        fmt.accuracy(run.best_accuracy),
        fmt.params_fit(run.params or {}, params_width),
    )


class DashboardScreen(Screen):
    def __init__(self) -> None:
        super().__init__()
        self.wide = True
        self.params_width = 20

    def compose(self) -> ComposeResult:
        yield TopBar("dashboard")
        with Vertical(id="dashboard"):
            yield Static(id="run-banner")
            yield Static(id="run-errors")
            yield DataTable(id="stages", cursor_type="row", zebra_stripes=True)
            yield Static("Recent runs", classes="section-title")
            yield DataTable(id="recent", cursor_type="row")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._layout_columns(self.app.size.width)
        self.watch(self.app, "snapshot", self.show_snapshot)
        self.watch(self.app, "production", lambda _: self._tick())
        self.set_interval(1.0, self._tick)

    def _layout_columns(self, width: int) -> None:
        self.wide = width >= WIDE
        stages = STAGE_COLUMNS if self.wide else NARROW_STAGE_COLUMNS
        set_columns(self.query_one("#stages", DataTable), stages, width)
        recent = RECENT_COLUMNS if self.wide else NARROW_RECENT_COLUMNS
        self.params_width = set_columns(self.query_one("#recent", DataTable), recent, width)

    def on_resize(self, event: events.Resize) -> None:
        self._layout_columns(event.size.width)
        self.show_snapshot(console_app(self.app).snapshot)

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            self.query_one("#run-banner", Static).update("Reading the workspace…")
            return
        self._tick()
        errors = self.query_one("#run-errors", Static)
        errors.update(rich_text("\n".join(f"⚠ {e}" for e in snapshot.errors[-2:]), limit=600))
        errors.display = bool(snapshot.errors)
        rows = list(snapshot.rows)
        last_child = [
            r.child and (i + 1 == len(rows) or not rows[i + 1].child) for i, r in enumerate(rows)
        ]
        fill_table(
            self.query_one("#stages", DataTable),
            [r.key for r in rows],
            [stage_cells(r, last, self.wide) for r, last in zip(rows, last_child, strict=True)],
            wrap=True,
        )
        recent = list(snapshot.history[:RECENT_COUNT])
        fill_table(
            self.query_one("#recent", DataTable),
            [r.run_id for r in recent],
            [recent_cells(r, self.params_width) for r in recent],
        )

    def _tick(self) -> None:
        self.query_one("#run-banner", Static).update(self.banner())

    def banner(self) -> Text:
        snapshot = console_app(self.app).snapshot
        if snapshot is None or snapshot.focus is None:
            return self._with_production(Text.from_markup(
                "[b]No runs yet.[/b] Press [b reverse] s [/] to start one "
                "(or run [b]kwsops run[/b] in a shell)."
            ))  # fmt: skip
        run = snapshot.focus
        text = Text()
        if snapshot.active:
            elapsed = console_app(self.app).clock() - run.started if run.started else None
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
                text.append(f"  best {fmt.accuracy(run.best_accuracy)}", style="green")
                if run.best_revision:
                    best = short_names([run.best_revision])[run.best_revision]
                    text.append_text(rich_text(f" ({best})", "green", 30))
        what = f"{kind_of(run.params or {})} from {run.origin or '?'}  ·  "
        text.append("\n").append_text(rich_text(what, "dim"))
        room = self.size.width - len(what) - 2 if self.size.width else 200
        params = fmt.params_fit(run.params or {}, max(room, 12))
        params.stylize("dim")
        text.append_text(params)
        if snapshot.scheduler:
            text.append_text(rich_text(f"  ·  {snapshot.scheduler}", "dim", 200))
        return self._with_production(text)

    def _with_production(self, text: Text) -> Text:
        """``production kws@v1.2.0`` on a line of its own, once a version holds the stage."""
        production = console_app(self.app).production
        if production is not None:
            text.append("\n").append("production ", style="bold green")
            text.append_text(rich_text(production.ref, "bold", 60))
            if production.run_id:
                text.append_text(rich_text(f"  from run {production.run_id}", "dim", 60))
        return text

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a recent run opens its log; on a stage, the shown run's log."""
        if event.data_table.id == "recent":
            self.post_message(OpenLog(event.row_key.value))
        else:
            snapshot = console_app(self.app).snapshot
            focus = snapshot.focus if snapshot else None
            self.post_message(
                OpenLog(None if snapshot and snapshot.active else (focus.run_id if focus else None))
            )
