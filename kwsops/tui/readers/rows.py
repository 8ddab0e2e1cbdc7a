"""The dashboard's rows: the stage DAG in order, one row per stage, and per task instance
where a stage runs several times (TrainFold per batch size and fold, Train per batch size)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kwsops.runs.state import RunState, TaskState
from kwsops.stages import STAGES
from kwsops.tui.readers.luigid import SchedulerTask

ENDED = ("ok", "failed", "cancelled", "killed", "unknown")


@dataclass(frozen=True)
class TaskRow:
    key: str  # luigi task id, or the family for a stage with no task yet
    family: str
    label: str
    state: str  # pending | running | done | failed | up to date | not run | cancelled | killed
    started: float | None = None
    duration: float | None = None
    detail: str = ""
    done: int = 0
    total: int = 0
    child: bool = False
    group: bool = False  # the row above a stage's instances: it counts finished tasks
    counted: str = ""  # what the progress column says instead of done/total (epochs run)


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def instance_label(params: dict) -> str:
    parts = []
    if isinstance(params, dict):
        if "batch_size" in params:
            parts.append(f"bs {params['batch_size']}")
        if "fold" in params:
            parts.append(f"fold {params['fold']}")
    return " · ".join(parts)


METRIC_NAMES = {
    "accuracy": "acc",
    "acc": "acc",
    "val_accuracy": "val acc",
    "val_acc": "val acc",
    "loss": "loss",
    "val_loss": "val loss",
}


def metrics_text(metrics: dict, detail: str = "") -> str:
    """The latest metrics of a running task, the ones its detail does not already say."""
    parts = []
    if isinstance(metrics.get("epoch"), int) and "epoch" not in detail:
        parts.append(f"epoch {metrics['epoch']}")
    for key, name in METRIC_NAMES.items():
        value = metrics.get(key)
        if key in detail or name in detail:
            continue  # the detail says it already (``val_acc 0.812``)
        if isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{name} {value:.3f}")
    return " · ".join(parts)


def _state(task: TaskState, run_status: str) -> str:
    if task.status in ("running", "pending") and run_status in ENDED:
        return "not run" if task.status == "pending" else run_status
    return str(task.status)


def epochs_counted(summary: dict) -> str:
    """``15,14/80``: the epochs each fold ran of those planned (a trained task's summary), so
    folds that stopped early never read as the planned count; '' without the numbers."""
    ran, planned = summary.get("epochs"), summary.get("epochs_planned")
    ran = [ran] if isinstance(ran, int) else ran
    if not isinstance(planned, int) or not isinstance(ran, list) or not ran:
        return ""
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in ran):
        return ""
    return f"{','.join(map(str, ran))}/{planned}"


def _row(task: TaskState, metrics: dict, run_status: str, child: bool) -> TaskRow:
    detail = str(task.error or task.detail or "")
    extra = metrics_text(metrics.get(task.task, {}), detail) if task.status == "running" else ""
    if extra and extra not in detail:
        detail = f"{detail} · {extra}" if detail else extra
    label = instance_label(task.params) if child else task.family
    return TaskRow(
        key=task.task,
        family=task.family,
        label=label,
        state=_state(task, run_status),
        started=_float(task.started),
        duration=_float(task.duration),
        detail=" ".join(detail.split()),
        done=_int(task.done),
        total=_int(task.total),
        child=child,
        counted=epochs_counted(task.summary) if task.status == "done" else "",
    )


def _summary_row(family: str, children: list[TaskRow]) -> TaskRow:
    states = [c.state for c in children]
    for state in ("failed", "killed", "cancelled", "running"):
        if state in states:
            overall = state
            break
    else:
        finished = all(s in ("done", "up to date") for s in states)
        overall = (
            ("up to date" if set(states) == {"up to date"} else "done") if finished else ("pending")
        )
    finished_count = sum(s in ("done", "up to date") for s in states)
    return TaskRow(
        key=family,
        family=family,
        label=f"{family} ×{len(children)}",
        state=overall,
        duration=wall_time(children),
        detail=f"{finished_count}/{len(children)} finished"
        + (f" · {states.count('running')} running" if "running" in states else ""),
        done=finished_count,
        total=len(children),
        group=True,
    )


def wall_time(children: list[TaskRow]) -> float | None:
    """From the first instance's start to the last one's end: instances run in parallel, so
    the sum of their durations is no time anyone waited. None while one has not ended."""
    spans = [
        (c.started, c.started + c.duration)
        for c in children
        if c.started is not None and c.duration is not None
    ]
    if not spans or any(c.state == "running" for c in children):
        return None
    if len(spans) < sum(c.duration is not None for c in children):  # a start not recorded
        return max(c.duration for c in children if c.duration is not None)
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _merge_scheduler(state: RunState, scheduled: Iterable[SchedulerTask]) -> None:
    """Tasks luigid knows and the event log does not (e.g. a run started without kwsops)."""
    for task in scheduled:
        if task.task_id in state.tasks:
            continue
        merged = TaskState(
            task.task_id,
            task.family,
            status=task.state,
            params=task.params,
            started=task.started,
            detail=task.detail,
        )
        if task.progress is not None:
            merged.done, merged.total = int(task.progress), 100
        state.tasks[task.task_id] = merged


def task_rows(
    state: RunState,
    metrics: dict[str, dict],
    run_status: str,
    scheduled: Iterable[SchedulerTask] = (),
) -> tuple[TaskRow, ...]:
    if scheduled:
        merged = RunState(run_id=state.run_id, status=state.status)
        merged.tasks = dict(state.tasks)
        _merge_scheduler(merged, scheduled)
        state = merged
    by_family: dict[str, list[TaskState]] = {}
    for task in state.ordered():
        by_family.setdefault(task.family, []).append(task)
    idle = "not run" if run_status in ENDED else "pending"
    rows: list[TaskRow] = []
    families = [stage.family for stage in STAGES]
    # Luigi checks nothing upstream of a complete task: a stage before one that ran is met
    reached = max((i for i, family in enumerate(families) if by_family.get(family)), default=-1)
    families += [f for f in by_family if f not in families]
    for number, family in enumerate(families):
        tasks = by_family.get(family, [])
        if family == "TrainFold" and not tasks and by_family.get("Train"):
            continue  # the folds trained together in Train ([Train] stacked)
        if not tasks and number < reached:
            rows.append(
                TaskRow(
                    key=family,
                    family=family,
                    label=family,
                    state="up to date",
                    detail="unchecked: a later stage ran",  # one line at 80 columns
                )
            )
        elif not tasks:
            rows.append(TaskRow(key=family, family=family, label=family, state=idle))
        elif len(tasks) == 1 and not instance_label(tasks[0].params):
            rows.append(_row(tasks[0], metrics, run_status, child=False))
        else:
            children = [_row(t, metrics, run_status, child=True) for t in tasks]
            rows.append(_summary_row(family, children))
            rows.extend(children)
    return tuple(rows)
