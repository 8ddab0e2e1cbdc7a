"""The run report: per task, outcome, start, duration, what it read and wrote.

Written beside each run's log as report.md and as one small self-contained report.html whose
timeline is an inline SVG (no scripts, no external files), like Snakemake's `--report` runtime
view. Both are rebuilt from the run's events, so they can be regenerated for any past run.
"""

from __future__ import annotations

import json
from datetime import datetime

from kwsops import states
from kwsops.atomic import atomic_write_text
from kwsops.runs.events import read_events
from kwsops.runs.folder import RunPaths, effective_status, read_status
from kwsops.runs.schema import damaged, shown
from kwsops.runs.state import RunState, TaskState
from kwsops.stages import STAGE_BY_FAMILY
from kwsops.text import escape_md, html_page, html_text


def load_run(paths: RunPaths) -> tuple[RunState, dict, dict]:
    batch = read_events(paths.events)
    state = RunState(problems=batch.errors).apply_all(batch.events)
    status = read_status(paths) or {}
    try:
        params = json.loads(paths.params.read_text())
    except (OSError, ValueError):
        params = {}
    return state, status, params


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def _md(text: object) -> str:
    """Table-cell safe: no pipes, no newlines, no control characters, no Markdown."""
    return escape_md(text, 2000)


def _params(params: dict) -> str:
    shown = {k: v for k, v in params.items() if k not in ("run_id", "standalone")}
    return json.dumps(shown, ensure_ascii=False)


def _detail(task: TaskState) -> str:
    return task.error if task.status in ("failed", "cancelled") else task.detail


def damage(paths: RunPaths, state: RunState, status: dict) -> list[str]:
    """What of the run's files could not be read as written, one line each."""
    found = [f"{paths.status.name}: {', '.join(damaged(status))} of the wrong type"]
    return (found if damaged(status) else []) + [
        line.replace(f"{paths.events}", paths.events.name) for line in state.problems
    ]


def task_rows(state: RunState) -> list[TaskState]:
    return [task for task in state.ordered() if task.status != "pending"]


def render_markdown(paths: RunPaths, state: RunState, status: dict, params: dict) -> str:
    outcome = effective_status(status)
    lines = [
        f"# Run {paths.run_id}",
        "",
        f"- outcome: **{outcome}** (exit code {shown(status, 'exit_code')})",
        f"- started: {_clock(status.get('started'))}, duration: "
        f"{shown(status, 'duration', '{:.1f} s')}, origin: {_md(params.get('origin', '?'))}",
        f"- params: {_md(_params(params))}",
        f"- log: `{paths.log.name}`, events: `{paths.events.name}`",
        *[f"- damaged: {_md(line)}" for line in damage(paths, state, status)],
        "",
        "| task | outcome | start | duration | detail |",
        "| --- | --- | --- | ---: | --- |",
    ]
    # what each task read and wrote as a list, which wraps: in the table, at 80 columns,
    # seven columns cut the task names and the paths
    files = ["", "What each task read and wrote:", ""]
    for task in task_rows(state):
        stage = STAGE_BY_FAMILY.get(task.family)
        duration = f"{task.duration:.1f} s" if task.duration is not None else ""
        detail = _detail(task)
        started = _clock(task.started)[11:]
        read = stage.reads if stage and task.status != "up to date" else ""
        wrote = stage.writes if stage and task.status == "done" else ""
        lines.append(
            f"| {_md(task.label)} | {task.status} | {started} | {duration} | {_md(detail)} |"
        )
        if read or wrote:
            said = [f"read {_md(read)}" if read else "", f"wrote {_md(wrote)}" if wrote else ""]
            files.append(f"- {_md(task.label)}: {'; '.join(part for part in said if part)}")
    lines += files if len(files) > 3 else []
    return "\n".join(lines) + "\n"


def timeline_svg(state: RunState, width: int = 900, row: int = 22) -> str:
    tasks = [t for t in task_rows(state) if t.started]
    if not tasks:
        return "<p>No task ran in this run.</p>"
    start = min(t.started for t in tasks)
    end = max((t.finished or t.started) for t in tasks)
    span = max(end - start, 1e-6)
    label_w, chart_w = 260, width - 270
    height = row * len(tasks) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">'
    ]
    for index, task in enumerate(tasks):
        y = 10 + index * row
        x = label_w + chart_w * (task.started - start) / span
        w = max(2.0, chart_w * ((task.finished or end) - task.started) / span)
        colour = states.colour(task.status)
        name = html_text(task.label, 40)
        parts.append(f'<text x="0" y="{y + 14}">{name}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{colour}"><title>{name}: {task.status}, '
            f"{task.duration or 0:.1f} s</title></rect>"
        )
    parts.append(f'<text x="{label_w}" y="{height - 4}">0 s</text>')
    parts.append(f'<text x="{width - 60}" y="{height - 4}">{span:.1f} s</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(paths: RunPaths, state: RunState, status: dict, params: dict) -> str:
    rows = []
    for task in task_rows(state):
        duration = f"{task.duration:.1f} s" if task.duration is not None else ""
        colour = states.colour(task.status)
        rows.append(
            f"<tr><td>{html_text(task.label)}</td><td style='color:{colour}'>{task.status}</td>"
            f"<td>{_clock(task.started)[11:]}</td><td>{duration}</td>"
            f"<td>{html_text(_detail(task))}</td></tr>"
        )
    outcome = effective_status(status)
    body = f"""<h1>Run {html_text(paths.run_id)}: {html_text(outcome)}</h1>
<p>started {_clock(status.get("started"))}, {shown(status, "duration", "{:.1f} s")},
exit code {shown(status, "exit_code")}, origin {html_text(params.get("origin", "?"))}</p>
{"".join(f"<p>damaged: {html_text(line)}</p>" for line in damage(paths, state, status))}
<p>params: {html_text(_params(params))}</p>
<h2>Timeline</h2>
{timeline_svg(state)}
<h2>Tasks</h2>
<table><tr><th>task</th><th>outcome</th><th>start</th><th>duration</th><th>detail</th></tr>
{"".join(rows)}
</table>
"""
    return html_page(f"kwsops run {paths.run_id}", body, style="td,th{text-align:left}")


def write_run_report(paths: RunPaths) -> None:
    state, status, params = load_run(paths)
    atomic_write_text(paths.report_md, render_markdown(paths, state, status, params))
    atomic_write_text(paths.report_html, render_html(paths, state, status, params))
