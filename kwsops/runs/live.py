"""The CLI's view of a run: live rich progress fed from the event log, then a summary table.

Progress is read from the run's events.jsonl (not from in-process callbacks), so it looks the
same whether tasks run in this process, in forked workers or under a central scheduler.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from kwsops import states
from kwsops.runs.events import read_events
from kwsops.runs.state import RunState, TaskState


def task_label(state: TaskState) -> str:
    params = state.params or {}
    shown = [f"{k}={params[k]}" for k in ("batch_size", "fold") if k in params]
    return f"{state.family}({', '.join(shown)})" if shown else state.family


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
            TextColumn("{task.fields[detail]}", style="cyan",
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            console=console,
            transient=False,
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
        style = states.style(state.status)
        detail = state.error if state.status == "failed" else state.detail
        total = state.total or None
        completed = state.done
        if state.status in ("done", "failed"):
            total = total or 1
            completed = total if state.status == "done" else completed
        self.progress.update(
            row,
            total=total,
            completed=completed,
            detail=f"[{style}]{detail}[/]" if style else detail,
        )
        if state.status in ("done", "failed"):
            self.progress.stop_task(row)


def summary_table(state: RunState, title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("stage")
    table.add_column("outcome")
    table.add_column("duration", justify="right")
    table.add_column("detail", overflow="fold")
    for task in state.ordered():
        style = states.style(task.status)
        duration = f"{task.duration:.1f} s" if task.duration is not None else ""
        detail = task.error if task.status == "failed" else task.detail
        table.add_row(task_label(task), f"[{style}]{task.status}[/]", duration, detail)
    return table


def outcome_lines(state: RunState) -> list[str]:
    """One plain line per task (``task  outcome  duration  detail``): output that is not a
    terminal is never wrapped, so each failure stays one line a person can grep."""
    lines = []
    for task in state.ordered():
        duration = f"{task.duration:.1f} s" if task.duration is not None else ""
        detail = task.error if task.status == "failed" else task.detail
        lines.append(
            "  ".join(part for part in (task_label(task), task.status, duration, detail) if part)
        )
    return lines


def print_outcome(console: Console, state: RunState, title: str) -> None:
    """The run's outcome: a table on a terminal, unwrapped lines anywhere else."""
    if console.is_terminal:
        console.print(summary_table(state, title))
        return
    for line in [title, *outcome_lines(state)]:
        console.print(Text(line), soft_wrap=True, highlight=False)
