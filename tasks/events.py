"""Luigi events -> the run's structured event log (reports/runs/<id>/events.jsonl).

Events go to the run named by ``KWSOPS_RUN_DIR`` (:func:`kwsops.runs.events.emit`). A failure
carries its error as one line and, when the exception says what the run's exit code should be
(``exit_code``, e.g. the quality gate's 5), that code: the run session decides by it. A
cancel that lands once the task's output is complete records the task as done.
"""

from __future__ import annotations

import os
import socket
import time

import luigi

from kwsops.runs.events import emit
from kwsops.text import error_line
from tasks.base import KwsTask
from tasks.process import TaskCancelled


def failure_fields(exception: BaseException) -> dict:
    """The one-line error and, when the exception names one, the run's exit code."""
    if isinstance(exception, TaskCancelled):  # "cancelled by SIGTERM" says it all
        return {"error": str(exception), "cancelled": True}  # a cancelled stage, not a failed one
    code = getattr(exception, "exit_code", None)
    return {"error": error_line(exception), **({"exit_code": code} if code else {})}


@KwsTask.event_handler(luigi.Event.START)
def _started(task: KwsTask) -> None:
    task._kws_started = time.time()
    emit(
        "task_started",
        task=task.task_id,
        family=task.task_family,
        params=task.to_str_params(only_significant=True),
        pid=os.getpid(),
        host=socket.gethostname(),
    )


@KwsTask.event_handler(luigi.Event.SUCCESS)
def _succeeded(task: KwsTask) -> None:
    summary = getattr(task, "_summary", None) or {}
    started = getattr(task, "_kws_started", time.time())
    emit(
        "task_done",
        task=task.task_id,
        family=task.task_family,
        duration=round(time.time() - started, 3),
        detail=summary.get("detail", ""),
        summary={k: v for k, v in summary.items() if k != "detail"},
    )


def _finished(task: KwsTask) -> bool:
    """Whether the task's output is complete (written atomically, so it is whole)."""
    try:
        return bool(task.complete())
    except Exception:
        return False


@KwsTask.event_handler(luigi.Event.FAILURE)
def _failed(task: KwsTask, exception: BaseException) -> None:
    if isinstance(exception, TaskCancelled) and _finished(task):
        _succeeded(task)  # the stop landed after the stage's work: it is recorded as done
        return
    started = getattr(task, "_kws_started", time.time())
    emit(
        "task_failed",
        task=task.task_id,
        family=task.task_family,
        duration=round(time.time() - started, 3),
        **failure_fields(exception),
    )


@KwsTask.event_handler(luigi.Event.DEPENDENCY_PRESENT)
def _up_to_date(task: KwsTask) -> None:
    emit("task_up_to_date", task=task.task_id, family=task.task_family)


@KwsTask.event_handler(luigi.Event.BROKEN_TASK)
def _broken(task: KwsTask, exception: BaseException) -> None:
    emit(
        "task_failed",
        task=task.task_id,
        family=task.task_family,
        duration=0.0,
        **failure_fields(exception),
    )
