"""How the console writes times, durations, accuracies and states (plain text and Rich styles)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from kwsops import states


def state_text(state: str) -> Text:
    return Text(f"{states.icon(state)} {state}", style=states.style(state))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def progress_bar(done: int, total: int, width: int = 6) -> str:
    if not total:
        return ""
    filled = max(0, min(width, round(width * done / total)))
    return f"{'█' * filled}{'░' * (width - filled)} {done}/{total}"


def params_text(params: dict) -> str:
    """The few parameters a person compares runs by, on one line."""
    parts = []
    batches = params.get("batch_sizes")
    if batches:
        parts.append("bs " + ",".join(str(b) for b in batches))
    for key, short in (("epochs", "ep"), ("folds", "folds"), ("learning_rate", "lr")):
        if params.get(key) is not None:
            parts.append(f"{short} {params[key]}")
    revisions = params.get("revisions")
    if revisions:
        parts.append(f"+{len(revisions)} rev")
    return " · ".join(parts)


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
