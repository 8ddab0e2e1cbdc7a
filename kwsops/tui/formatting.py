"""How the console writes times, durations, accuracies and states (plain text and Rich styles)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from kwsops import states
from kwsops.runs.request import params_line
from kwsops.runs.show import duration_text
from kwsops.text import rich_text


def state_text(state: str) -> Text:
    return Text(f"{states.icon(state)} {state}", style=states.style(state))


def duration(seconds: float | None) -> str:
    return duration_text(seconds)


def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def progress_bar(done: int, total: int, unit: str = "", width: int = 6) -> str:
    """``███░░░ 2/3 revisions``: the bar only where ``width`` leaves room for it."""
    if not total:
        return ""
    count = f"{done}/{total}" + (f" {unit}" if unit else "")
    if width <= 0:
        return count
    filled = max(0, min(width, round(width * done / total)))
    return f"{'█' * filled}{'░' * (width - filled)} {count}"


def cut_text(text: object, style: str = "", limit: int = 400) -> Text:
    """A cell's text as data, cut with … where the column ends (never a bare cut: ``0.`` for
    ``0.834`` would read as another value)."""
    cell = rich_text(text, style, limit)
    cell.no_wrap, cell.overflow = True, "ellipsis"
    return cell


def params_fit(params: dict, width: int) -> Text:
    """The run's key parameters in at most ``width`` cells: whole parts dropped from the end
    (marked …), never a value cut into another (``ep 4`` for 40)."""
    parts = params_line(params).split(" · ")
    shown: list[str] = []
    for part in parts:
        candidate = " · ".join([*shown, part])
        if len(candidate) + (2 if len(shown) + 1 < len(parts) else 0) > width:
            break
        shown.append(part)
    if not shown:  # not even the first part fits: cut it, visibly
        return rich_text(parts[0], limit=max(width, 2))
    text = " · ".join(shown) + (" …" if len(shown) < len(parts) else "")
    return rich_text(text, limit=max(width, 1) + 2)


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], lo: float, hi: float, bins: int = 12) -> str:
    """A histogram of ``values`` over [lo, hi] as one line of block characters."""
    if not values:
        return ""
    counts = [0] * bins
    span = (hi - lo) or 1.0
    for value in values:
        counts[min(bins - 1, max(0, int((value - lo) / span * bins)))] += 1
    top = max(counts)
    return "".join(SPARK[round(c / top * (len(SPARK) - 1))] if c else " " for c in counts)
