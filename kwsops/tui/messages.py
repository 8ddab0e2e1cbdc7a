"""Small messages the console's workers and screens send each other (toolong-style)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message
from textual.notifications import SeverityLevel

from kwsops.tui.readers.monitor import Snapshot


@dataclass
class SnapshotReady(Message):
    """The monitor thread read the workspace again."""

    snapshot: Snapshot


@dataclass
class Problem(Message):
    """Something went wrong in a worker; shown as a notification, never a traceback."""

    text: str
    severity: SeverityLevel = "error"


@dataclass
class OpenLog(Message):
    """Show this run's log (None: follow the active run)."""

    run_id: str | None


@dataclass
class OpenReport(Message):
    """Show a Markdown report (None: the workspace's comparison report)."""

    path: Path | None
    title: str = ""


@dataclass
class LogIndexed(Message):
    """The log view's index grew (or restarted, when ``reset``)."""

    generation: int
    line_count: int
    reset: bool
    fraction: float  # of the file indexed so far
    caught_up: bool


@dataclass
class LogFiltered(Message):
    """Lines matching the filter (``first_line`` onwards; ``append`` extends the last result)."""

    generation: int
    query: str
    lines: list[int]
    append: bool


@dataclass
class LogFound(Message):
    """Where the search went (None: no more matches in that direction)."""

    generation: int
    query: str
    line: int | None


@dataclass
class ReportLoaded(Message):
    path: Path
    text: str | None  # None: the file does not exist
