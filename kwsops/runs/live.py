"""The CLI's view of a run: live rich progress fed from the event log, then a summary table;
and how the CLI prints tables and errors anywhere.

Progress is read from the run's events.jsonl (not from in-process callbacks), so it looks the
same whether tasks run in this process, in forked workers or under a central scheduler. The
live rows vanish when the run ends: the summary says each outcome once. Output that is not a
terminal (cron mail, log files, pipes) is never wrapped: a table becomes one plain line per
row, an error one line.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from kwsops import states
from kwsops.runs.events import read_events
from kwsops.runs.state import RunState, TaskState
from kwsops.text import clean_text, rich_text

ENDED = ("done", "failed", "cancelled")


def task_label(state: TaskState) -> str:
    """A task as people name it (``TrainFold batch 16 fold 0``), printable."""
    return clean_text(state.label, 60)


def outcome_detail(task: TaskState) -> str:
    """What a person reads about a task: its error when it failed, else its detail."""
    return task.error if task.status in ("failed", "cancelled") else task.detail


def print_error(console: Console, error: object, style: str = "red") -> None:
    """``kwsops: <message>`` on one line, never wrapped, the message printed as data."""
    message = str(error).strip() or type(error).__name__
    line = Text.assemble(("kwsops:", style), " ", clean_text(" ".join(message.split()), 2000))
    console.print(line, soft_wrap=True, highlight=False)


def print_table(
    console: Console, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
    *, justify: Sequence[str] = (), wrap: Sequence[str] = (), whole: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> None:  # fmt: skip
    """A table on a terminal; elsewhere ``title`` and one line per row, columns two spaces
    apart and nothing wrapped (``grep`` finds a whole row). Cells may be ``Text``.

    On a terminal, the ``whole`` columns (identifiers) are never cut; where the table would
    not fit the width, the ``optional`` columns are left out, in that order, first."""
    if console.is_terminal:
        plain = [[str(getattr(cell, "plain", cell)) for cell in row] for row in rows]
        widths = [max([len(h), *(len(r[i]) for r in plain)]) for i, h in enumerate(headers)]
        shown = list(range(len(headers)))

        def needed() -> int:  # folded columns can give way down to a few cells
            return sum(min(widths[i], 20) if headers[i] in wrap else widths[i]
                       for i in shown) + 3 * len(shown) + 1  # fmt: skip

        for name in optional:
            if needed() <= console.width:
                break
            shown = [i for i in shown if headers[i] != name]
        table = Table(title=title or None, title_justify="left", header_style="bold")
        for index in shown:
            header = headers[index]
            align = justify[index] if index < len(justify) else "left"
            table.add_column(header, justify=align, overflow="fold" if header in wrap else "ellipsis",  # type: ignore[arg-type]
                             no_wrap=header not in wrap,
                             min_width=widths[index] if header in whole else None)  # fmt: skip
        for row in rows:
            table.add_row(*(row[i] if isinstance(row[i], Text) else rich_text(row[i], limit=2000)
                            for i in shown))  # fmt: skip
        console.print(table)
        return
    plain = [[clean_text(getattr(cell, "plain", cell), 2000) for cell in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in plain)]) for i, h in enumerate(headers)]
    lines = [title] if title else []
    for row in [list(headers), *plain]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for line in lines:
        console.print(Text(line), soft_wrap=True, highlight=False)


class LiveRunView:
    """Follows an events file in a thread and draws one progress row per started task."""

    def __init__(self, events_path: Path, console: Console, interval: float = 0.25) -> None:
        self.events_path = events_path
        self.console = console
        self.interval = interval
        self.state = RunState()
        self._offset = 0
        self._rows: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="kwsops-progress")
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", table_column=Column(width=30, no_wrap=True)),
            BarColumn(bar_width=16),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            console=console,
            transient=True,  # the summary table says each outcome once
            expand=True,
        )  # fmt: skip

    def __enter__(self) -> LiveRunView:
        self.progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._drain()
        self.progress.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._drain()

    def _drain(self) -> None:
        batch = read_events(self.events_path, self._offset)
        self._offset = batch.offset
        for event in batch.events:
            self.state.apply(event)
            task_id = event.get("task")
            if task_id and event.get("event") in (
                "task_started",
                "task_progress",
                "task_done",
                "task_failed",
            ):
                self._draw(self.state.tasks[task_id])

    def _draw(self, state: TaskState) -> None:
        row = self._rows.get(state.task)
        if row is None:
            row = self._rows[state.task] = self.progress.add_task(
                task_label(state), total=None, detail=""
            )
        total = state.total or None
        completed = state.done
        if state.status in ENDED:
            total = total or 1
            completed = total if state.status == "done" else completed
        self.progress.update(
            row, total=total, completed=completed, detail=clean_text(outcome_detail(state))
        )
        if state.status in ENDED:
            self.progress.stop_task(row)


def grouped(state: RunState) -> list[tuple[str, TaskState, float | None]]:
    """Tasks in order, with the tasks of one stage that ended the same way (the same error
    from every fold) as one row: (label, first task, summed duration)."""
    found: list[tuple[str, TaskState, float | None]] = []
    members: list[TaskState] = []

    def close() -> None:
        if members:
            durations = [t.duration for t in members if t.duration is not None]
            many = f"{members[0].family} ×{len(members)}"
            label = task_label(members[0]) if len(members) == 1 else many
            found.append((label, members[0], sum(durations) if durations else None))
            members.clear()

    for task in state.ordered():
        same = members and (task.family, task.status, outcome_detail(task)) == (
            members[0].family, members[0].status, outcome_detail(members[0]))  # fmt: skip
        if not same or task.status not in ("failed", "cancelled", "up to date"):
            close()
        members.append(task)
    close()
    return found


def summary_rows(state: RunState) -> list[list[object]]:
    rows: list[list[object]] = []
    for label, task, seconds in grouped(state):
        style = states.style(task.status)
        duration = f"{seconds:.1f} s" if seconds is not None else ""
        detail = rich_text(outcome_detail(task), style if task.status == "failed" else "", 2000)
        rows.append([label, Text(task.status, style=style), duration, detail])
    return rows


def print_outcome(console: Console, state: RunState, title: str) -> None:
    """The run's outcome: a table on a terminal, unwrapped lines anywhere else."""
    print_table(
        console, title, ("stage", "outcome", "duration", "detail"), summary_rows(state),
        justify=("left", "left", "right", "left"), wrap=("detail",),
    )  # fmt: skip
