"""Luigi events -> the run's structured event log (reports/runs/<id>/events.jsonl).

The run folder is passed down in ``KWSOPS_RUN_DIR`` so forked workers and workers started by
a central scheduler write to the same file. Without it (a bare ``luigi.build`` in a script)
events go nowhere.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import luigi

from kwsops.runs import EventLog
from kwsops.secrets import scrub
from tasks.base import KwsTask

RUN_DIR_ENV = "KWSOPS_RUN_DIR"


def current_log() -> EventLog | None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    return EventLog(Path(run_dir) / "events.jsonl") if run_dir else None


def emit(event: str, **fields: object) -> None:
    log = current_log()
    if log is not None:
        log.emit(event, **fields)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    name = type(exc).__name__
    return scrub(f"{name}: {message}" if message else name)


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


@KwsTask.event_handler(luigi.Event.FAILURE)
def _failed(task: KwsTask, exception: BaseException) -> None:
    started = getattr(task, "_kws_started", time.time())
    emit(
        "task_failed",
        task=task.task_id,
        family=task.task_family,
        duration=round(time.time() - started, 3),
        error=one_line(exception),
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
        error=one_line(exception),
    )
