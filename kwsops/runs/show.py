"""What people read about runs: one summary per run folder (the CLI's `kwsops runs` and the
console's Runs screen share it), two runs side by side, and `kwsops runs show ID` (rich,
timeline as text bars)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kwsops import states
from kwsops.runs.events import read_events
from kwsops.runs.folder import RunPaths, effective_status, read_status
from kwsops.runs.live import outcome_detail, print_table, task_label
from kwsops.runs.pages import damage, task_rows
from kwsops.runs.request import kind_of, params_line
from kwsops.runs.schema import shown
from kwsops.runs.state import RunState, TaskState
from kwsops.text import clean_text, rich_text

BAR_WIDTH = 24
BAR_ROOM = 100  # narrower, `runs show` leaves the timeline bars out
# (key, title, alignment): the columns of a run list, in the CLI and the console
RUN_COLUMNS = (
    ("run", "Run", "left"),
    ("started", "Started", "left"),
    ("kind", "Command", "left"),
    ("status", "Outcome", "left"),
    ("duration", "Time", "right"),
    ("accuracy", "Best acc", "right"),
    ("params", "Params", "left"),
    ("reason", "Reason", "left"),
)
SPLIT_WORDS = {"official": "official", "speaker": "held-out speakers", "clip": "clip by clip"}


def data_line(state: RunState, run: RunPaths) -> str | None:
    """Clips, labels, speakers and the test split: from this run's MakeSpectrograms, else (the
    stage was up to date) from the workspace's data/spec_ds/meta.json as it is now."""
    from kwsops.audio.layout import speakers_phrase
    from kwsops.keywords import is_word

    made = next(
        (
            t.summary
            for t in state.ordered()
            if t.family == "MakeSpectrograms" and t.summary.get("labels")
        ),
        None,
    )
    where = ""
    if made:
        try:
            clips, test = int(made["train"]) + int(made["test"]), int(made["test"])
            labels, speakers = int(made["labels"]), int(made["speakers"])
            kind = str(made.get("split", ""))
        except (KeyError, TypeError, ValueError):
            return None
    else:
        try:  # a run folder is <workspace>/reports/runs/<run-id>
            meta = json.loads((run.root.parents[2] / "data/spec_ds/meta.json").read_text())
            test, labels = len(meta["test"]["ids"]), len(list(filter(is_word, meta["labels"])))
            clips = len(meta["train"]["ids"]) + test
            speakers = len({s for s in meta["train"]["speakers"] + meta["test"]["speakers"] if s})
            kind, where = meta["split"].get("kind", ""), " (data/spec_ds now)"
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
    split = f"; test split: {SPLIT_WORDS.get(kind, kind)}, {test} clips" if kind else ""
    return f"data{where}: {clips} clips, {labels} labels, {speakers_phrase(speakers)}{split}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _accuracies(values: dict, depth: int = 0) -> Iterable[float]:
    for key, value in values.items():
        if isinstance(value, dict) and depth < 2:
            yield from _accuracies(value, depth + 1)
        elif "acc" in str(key).lower() and 0.0 <= (_number(value) or -1.0) <= 1.0:
            yield float(value)


def best_accuracy(status: dict, tasks: Iterable[TaskState]) -> float | None:
    """status.json's ``best_accuracy``, else the best accuracy Validate reported."""
    if (given := _number(status.get("best_accuracy"))) is not None:
        return given
    found = [a for t in tasks if t.status == "done" and t.family == "Validate"
             and isinstance(t.summary, dict) for a in _accuracies(t.summary)]  # fmt: skip
    return max(found, default=None)


def clock(timestamp: float | None) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return (
        f"{hours}h {minutes:02d}m"
        if hours
        else f"{minutes}m {secs:02d}s"
        if minutes
        else f"{secs}s"
    )


@dataclass(frozen=True)
class RunSummary:
    """One run folder as a list shows it."""

    run_id: str
    status: str  # effective status: a "running" run whose process died reads "killed"
    origin: str = ""
    started: float | None = None
    duration: float | None = None
    best_accuracy: float | None = None
    best_revision: str | None = None
    params: dict | None = None
    pid: int | None = None
    exit_code: int | None = None
    has_report: bool = False
    reason: str = ""  # why it did not end ok: the first failed task and its error

    @property
    def kind(self) -> str:
        return kind_of(self.params or {})

    def sort_key(self, column: str) -> tuple:
        values = {
            "run": self.run_id,
            "started": self.started or 0.0,
            "kind": self.kind,
            "status": self.status,
            "duration": self.duration if self.duration is not None else -1.0,
            "accuracy": self.best_accuracy if self.best_accuracy is not None else -1.0,
            "params": params_line(self.params or {}),
            "reason": self.reason,
        }
        return (values.get(column, self.run_id), self.run_id)

    def cell(self, column: str) -> Text | str:
        if column == "run":
            return self.run_id
        if column == "started":
            return clock(self.started)
        if column == "kind":
            return self.kind
        if column == "status":
            code = f" ({self.exit_code})" if self.exit_code not in (None, 0) else ""
            return Text(f"{states.icon(self.status)} {self.status}{code}",
                        style=states.style(self.status))  # fmt: skip
        if column == "duration":
            return duration_text(self.duration)
        if column == "accuracy":
            return "" if self.best_accuracy is None else f"{self.best_accuracy:.3f}"
        if column == "params":
            return rich_text(params_line(self.params or {}))
        if column == "reason":
            return rich_text(self.reason, "red" if self.status == "failed" else "dim", 400)
        raise KeyError(column)


def load_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def summarise(paths: RunPaths, state: RunState | None = None) -> RunSummary:
    """A run folder's summary (``state``: its events, already folded, to save a read)."""
    status = read_status(paths) or {}  # a dead run's "running" is finalised on disk first
    params = load_json(paths.params)
    if state is None:
        state = RunState().apply_all(read_events(paths.events).events)
    outcome = effective_status(status) if status else state.status
    if not status and outcome == "running":
        outcome = "unknown"  # no status.json: a run folder being created, or a broken one
    pid, code = status.get("pid"), status.get("exit_code")
    reason = str(status.get("reason") or state.failure_reason())
    if not reason and outcome in ("cancelled", "killed"):
        reason = outcome
    return RunSummary(
        run_id=paths.run_id,
        status=outcome,
        origin=str(params.get("origin") or status.get("origin") or ""),
        started=_number(status.get("started")) or state.started,
        duration=_number(status.get("duration")),
        best_accuracy=best_accuracy(status, state.tasks.values()),
        best_revision=status.get("best_revision"),
        params=params,
        pid=pid if isinstance(pid, int) else None,
        exit_code=code if isinstance(code, int) else None,
        has_report=paths.report_md.exists(),
        reason=clean_text(reason, 400) if outcome != "ok" else "",
    )


def run_summaries(runs: Iterable[RunPaths]) -> list[RunSummary]:
    return [summarise(paths) for paths in runs]


def sort_runs(runs: list[RunSummary], column: str, reverse: bool = False) -> list[RunSummary]:
    """By ``column``; the run id (and start time) newest first, the others ascending."""
    newest_first = column in ("run", "started")
    return sorted(runs, key=lambda r: r.sort_key(column), reverse=newest_first != reverse)


# two runs side by side -------------------------------------------------------------------------
def _results(state: RunState, status: dict) -> dict[str, str]:
    found = {
        "outcome": effective_status(status),
        "exit code": str(status.get("exit_code", "")),
        "duration": duration_text(_number(status.get("duration"))),
        "best accuracy": f"{status['best_accuracy']:.3f}"
        if _number(status.get("best_accuracy")) is not None else "",
        "best revision": str(status.get("best_revision") or ""),
        "reason": str(status.get("reason") or ""),
    }  # fmt: skip
    for task in state.ordered():
        mean = task.summary.get("val_accuracy_mean") if task.family == "Train" else None
        if _number(mean) is not None:
            found[f"{task.label}: mean val acc"] = f"{mean:.3f}"
    return found


def compare_runs(first: tuple, second: tuple) -> list[list[str]]:
    """Rows ``[name, first, second]`` of the params and results that differ between two runs
    (each given as ``load_run``'s ``(state, status, params)``)."""
    rows = []
    (state_a, status_a, params_a), (state_b, status_b, params_b) = first, second
    skip = {"run_id", "standalone", "asked"}
    for section, a, b in (
        ("param", params_a, params_b),
        ("result", _results(state_a, status_a), _results(state_b, status_b)),
    ):
        for name in sorted(set(a) | set(b), key=lambda n: (n not in a, n)):
            if name in skip:
                continue
            left, right = _shown(a.get(name)), _shown(b.get(name))
            if left != right:
                rows.append([f"{section} {name}", left, right])
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return " ".join(clean_text(v) for v in value) or "–"
    return clean_text(value, 400) or "–"


# `kwsops runs show` ----------------------------------------------------------------------------
def timeline_bar(start: float, end: float, t0: float, span: float, width: int) -> str:
    left = round(width * (start - t0) / span)
    length = max(1, round(width * (end - start) / span))
    return " " * left + "█" * min(length, width - left)


def params_text(params: dict) -> str:
    """The resolved parameters as ``name=value`` pairs (the run's id and bookkeeping left out)."""
    shown = {k: v for k, v in params.items() if k not in ("run_id", "standalone")}
    return ", ".join(f"{k}={_shown(v)}" for k, v in shown.items())


def render_run(
    console: Console, run: RunPaths, state: RunState, status: dict, params: dict
) -> None:
    outcome = effective_status(status)
    style = states.style(outcome)
    head = Text.assemble(("run ", "bold"), (run.run_id, "bold"), ": ", (outcome, style))
    head.append(f"  ({kind_of(params)})", "dim")
    console.print(head)
    console.print(rich_text(f"params: {params_text(params)}", limit=4000), soft_wrap=True)
    console.print(
        rich_text(f"exit code {shown(status, 'exit_code')}, "
                  f"{shown(status, 'duration', '{:.1f} s')}; log: {run.log}", limit=4000),
        soft_wrap=True,
    )  # fmt: skip
    for problem in damage(run, state, status):
        console.print(rich_text(f"damaged: {problem}", "red", limit=4000), soft_wrap=True)
    line = data_line(state, run)
    if line:
        console.print(rich_text(line, limit=4000), soft_wrap=True)
    tasks = task_rows(state)
    if console.is_terminal:
        console.print(timeline_table(tasks, console.width))
    else:
        rows = [[task_label(t), t.status, f"{t.duration:.1f}" if t.duration is not None else "",
                 outcome_detail(t)] for t in tasks]  # fmt: skip
        print_table(console, "", ("task", "outcome", "s", "detail"), rows)
    if run.report_html.exists():
        console.print(rich_text(f"HTML report with timeline: {run.report_html}", limit=4000),
                      soft_wrap=True)  # fmt: skip


def timeline_table(tasks: list[TaskState], width: int = 120) -> Table:
    """Task names whole; below ``BAR_ROOM`` columns the timeline bars give way (the seconds
    stay), so that the detail keeps room."""
    timed = [t for t in tasks if t.started]
    t0 = min((t.started for t in timed), default=0.0)
    t1 = max(((t.finished or t.started) for t in timed), default=0.0)
    span = max(t1 - t0, 1e-6)
    bars = width >= BAR_ROOM
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column(
        "task", no_wrap=True, min_width=max((len(task_label(t)) for t in tasks), default=4)
    )
    table.add_column("outcome", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    if bars:
        table.add_column("timeline", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for task in tasks:
        colour = states.style(task.status)
        bar = (
            timeline_bar(task.started, task.finished or t1, t0, span, BAR_WIDTH)
            if task.started
            else ""
        )
        duration = f"{task.duration:.1f}" if task.duration is not None else ""
        table.add_row(task_label(task), Text(task.status, colour), duration,
                      *([Text(bar, colour)] if bars else []),
                      rich_text(outcome_detail(task), limit=2000))  # fmt: skip
    return table
