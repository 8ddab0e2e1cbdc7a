"""Luigi events -> the run's structured event log (reports/runs/<id>/events.jsonl).

Events go to the run named by ``KWSOPS_RUN_DIR`` (:func:`kwsops.runs.events.emit`). A failure
carries its error as one line and, when the exception says what the run's exit code should be
(``exit_code``, e.g. the quality gate's 5), that code: the run session decides by it. A
cancel that lands once the task's output is complete records the task as done.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

import luigi

from kwsops import exitcodes
from kwsops.runs.events import emit
from kwsops.runs.space import free_bytes, is_out_of_space, remove_partial_objects, space_message
from kwsops.text import error_line
from tasks.base import KwsTask
from tasks.process import TaskCancelled


def failure_fields(exception: BaseException, task: luigi.Task | None = None) -> dict:
    """The one-line error and, when the exception names one, the run's exit code. Out of
    disk space: what the stage left half-written is removed first, then said in one line."""
    if isinstance(exception, TaskCancelled):  # "cancelled by SIGTERM" says it all
        return {"error": str(exception), "cancelled": True}  # a cancelled stage, not a failed one
    if isinstance(task, KwsTask) and is_out_of_space(exception):
        return {"error": out_of_space(task, exception), "exit_code": exitcodes.TASK_FAILED}
    code = getattr(exception, "exit_code", None)
    return {"error": error_line(exception), **({"exit_code": code} if code else {})}


def out_of_space(task: KwsTask, exception: BaseException) -> str:
    ws = task.ws
    remove_partial_objects(ws.root / ".dvc" / "cache", ws.local_remote_dir)
    where = getattr(exception, "filename", None) or ws.data_dir
    return space_message(where, getattr(task, "_kws_free", None), task.task_family)


@KwsTask.event_handler(luigi.Event.START)
def _started(task: KwsTask) -> None:
    task._kws_started = time.time()
    task._kws_free = free_bytes(task.ws.root)
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
    fields = failure_fields(exception, task)
    with contextlib.suppress(OSError):  # a full disk even now: tasks.runner says it then
        emit("task_failed", task=task.task_id, family=task.task_family,
             duration=round(time.time() - started, 3), **fields)  # fmt: skip


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
        **failure_fields(exception, task),
    )
