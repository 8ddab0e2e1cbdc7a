"""`kwsops runs show ID`: one run's report in the terminal (rich), timeline as text bars."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kwsops import states
from kwsops.runs.folder import RunPaths, effective_status
from kwsops.runs.live import task_label
from kwsops.runs.pages import task_rows
from kwsops.runs.state import RunState

BAR_WIDTH = 24
SPLIT_WORDS = {"official": "official", "speaker": "held-out speakers", "clip": "clip by clip"}


def data_line(state: RunState, run: RunPaths) -> str | None:
    """Clips, labels, speakers and the test split: from this run's MakeSpectrograms, else (the
    stage was up to date) from the workspace's data/spec_ds/meta.json as it is now."""
    from kwsops.audio.layout import speakers_phrase

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
        clips, test = made["train"] + made["test"], made["test"]
        labels, speakers, kind = made["labels"], made["speakers"], made.get("split", "")
    else:
        try:  # a run folder is <workspace>/reports/runs/<run-id>
            meta = json.loads((run.root.parents[2] / "data/spec_ds/meta.json").read_text())
            test, labels = len(meta["test"]["ids"]), len(meta["labels"])
            clips = len(meta["train"]["ids"]) + test
            speakers = len({s for s in meta["train"]["speakers"] + meta["test"]["speakers"] if s})
            kind, where = meta["split"].get("kind", ""), " (data/spec_ds now)"
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
    split = f"; test split: {SPLIT_WORDS.get(kind, kind)}, {test} clips" if kind else ""
    return f"data{where}: {clips} clips, {labels} labels, {speakers_phrase(speakers)}{split}"


def timeline_bar(start: float, end: float, t0: float, span: float, width: int) -> str:
    left = round(width * (start - t0) / span)
    length = max(1, round(width * (end - start) / span))
    return " " * left + "█" * min(length, width - left)


def render_run(
    console: Console, run: RunPaths, state: RunState, status: dict, params: dict
) -> None:
    outcome = effective_status(status)
    style = states.style(outcome)
    console.print(Text.assemble(("run ", "bold"), (run.run_id, "bold"), ": ", (outcome, style)))
    shown = {k: v for k, v in params.items() if k not in ("run_id",)}
    console.print(f"params: {shown}", highlight=False)
    console.print(
        f"exit code {status.get('exit_code', '?')}, "
        f"{status.get('duration', 0):.1f} s; log: {run.log}",
        highlight=False,
    )
    line = data_line(state, run)
    if line:
        console.print(line, highlight=False, markup=False)
    tasks = task_rows(state)
    timed = [t for t in tasks if t.started]
    t0 = min((t.started for t in timed), default=0.0)
    t1 = max(((t.finished or t.started) for t in timed), default=0.0)
    span = max(t1 - t0, 1e-6)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("task", overflow="fold")
    table.add_column("outcome")
    table.add_column("s", justify="right")
    table.add_column("timeline", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for task in tasks:
        colour = states.style(task.status)
        bar = (
            timeline_bar(task.started, task.finished or t1, t0, span, BAR_WIDTH)
            if task.started
            else ""
        )
        detail = task.error if task.status == "failed" else task.detail
        duration = f"{task.duration:.1f}" if task.duration is not None else ""
        table.add_row(
            task_label(task), f"[{colour}]{task.status}[/]", duration, f"[{colour}]{bar}[/]", detail
        )
    console.print(table)
    if run.report_html.exists():
        console.print(f"HTML report with timeline: {run.report_html}", highlight=False)
