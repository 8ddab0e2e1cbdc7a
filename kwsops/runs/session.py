"""One run of the pipeline, from taking the workspace lock to the run report.

Both entry points run through a :class:`RunSession`: `kwsops run` (tasks/runner.py) and
Luigi's own command line (tasks/luigi_cli.py). It holds the workspace lock, opens the run
folder with its log and event log, and closes the run with one rule for the exit code
(:func:`exit_code`), a final status and the run report.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kwsops import exitcodes
from kwsops.config import THREADS_ENV, restored_environ
from kwsops.procs import end_processes
from kwsops.runs.events import RUN_DIR_ENV, EventLog, read_events
from kwsops.runs.folder import RunPaths, create_run, new_run_id, write_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.runs.pages import write_run_report
from kwsops.runs.state import RunState
from kwsops.secrets import (
    ScrubbingFilter,
    register_secret,
    scrub_all_log_records,
)
from kwsops.workspace import WORKSPACE_ENV, Workspace

WORKERS_END_S = 10  # how long a stopped run waits for its workers to end
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def exit_code(state: RunState, completed: bool) -> int:
    """The run's exit code: the failed tasks' own code when they all name the same one (the
    quality gate's 5, a data check's 4), else 1 for any failure or anything left undone."""
    failed = state.failed()
    if failed:
        codes = {task.exit_code for task in failed}
        only = codes.pop() if len(codes) == 1 else None
        return only if only else exitcodes.TASK_FAILED
    return exitcodes.OK if completed else exitcodes.TASK_FAILED


def best_accuracy(state: RunState) -> float | None:
    """The best accuracy Validate reported in this run, if it ran."""
    return next(
        (
            task.summary["accuracy"]
            for task in state.tasks.values()
            if task.family == "Validate" and task.summary.get("accuracy") is not None
        ),
        None,
    )


def best_revision(state: RunState) -> str | None:
    """The revision that scored best in this run's Validate, if it ran."""
    return next(
        (str(task.summary["best"]) for task in state.tasks.values()
         if task.family == "Validate" and task.summary.get("best")),
        None,
    )  # fmt: skip


def register_workspace_secrets(ws: Workspace) -> None:
    """Mask what this workspace's configs hold (the DVC remote's password in
    .dvc/config.local, ClearML keys in clearml.conf) in everything this process logs or shows.
    Every entry point calls it: `kwsops run`, `luigi --module tasks`, `kwsops worker`."""
    from kwsops.tracking.setup import configured_secrets
    from kwsops.versioning.dvc_config import known_secrets

    for value in [*known_secrets(ws.root), *configured_secrets()]:
        register_secret(value)
    scrub_all_log_records()


class RunLogHandler(logging.FileHandler):
    """run.log. A line the disk has no room for is dropped: a full disk ends the run with one
    line of its own (kwsops.runs.space), never with logging's tracebacks on the terminal."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


def attach_log(paths: RunPaths) -> logging.Handler:
    """Send every log record of this process to the run's run.log, secrets masked."""
    handler = RunLogHandler(paths.log, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def detach_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    with contextlib.suppress(OSError):  # the last lines meet a full disk: dropped
        handler.close()


@contextlib.contextmanager
def run_environment(ws: Workspace, paths: RunPaths) -> Iterator[None]:
    """What forked and joining workers inherit: the run folder, the workspace, the thread
    count. Restored afterwards, so nothing leaks when a run is started in-process."""
    with restored_environ(RUN_DIR_ENV, WORKSPACE_ENV, THREADS_ENV):
        os.environ[RUN_DIR_ENV] = str(paths.root)
        os.environ[WORKSPACE_ENV] = str(ws.root)
        yield


SPACE_RESERVE = 256 * 1024  # bytes kept in the run folder until the outcome is recorded


def _reserve_file(paths: RunPaths) -> Path:
    return paths.root / ".space-reserve"


def reserve_space(paths: RunPaths) -> None:
    """Hold a little disk space while the run works, so that a run that fills the disk can
    still record how it ended (status.json, the last events) once this is let go."""
    with contextlib.suppress(OSError):
        _reserve_file(paths).write_bytes(b"\0" * SPACE_RESERVE)


def release_space(paths: RunPaths) -> None:
    _reserve_file(paths).unlink(missing_ok=True)


class RunSession:
    """A run in a workspace: ``open`` takes the lock (raising ``AlreadyRunning`` when another
    run holds it) and starts the run folder; ``finish`` records the outcome and lets go."""

    def __init__(self, ws: Workspace, params: dict, origin: str, run_id: str | None = None):
        self.ws = ws
        self.params = params
        self.origin = origin
        self.lock = WorkspaceLock(ws.lock_file)
        self.paths = RunPaths(ws.runs_dir / (run_id or new_run_id()))
        self.started = time.time()
        self._handler: logging.Handler | None = None
        self.reason: str | None = None  # why the run ended, when no task's error says it

    @property
    def events(self) -> EventLog:
        return EventLog(self.paths.events)

    def open(self) -> RunPaths:
        self.lock.acquire(self.paths.run_id, origin=self.origin)
        try:
            self.paths = create_run(
                self.ws.runs_dir, self.params, self.origin, run_id=self.paths.run_id
            )
        except BaseException:
            self.lock.release()
            raise
        register_workspace_secrets(self.ws)
        reserve_space(self.paths)
        self._handler = attach_log(self.paths)
        self.started = time.time()
        self.events.emit(
            "run_started",
            run_id=self.paths.run_id,
            params=self.params,
            pid=os.getpid(),
            origin=self.origin,
        )
        return self.paths

    def state(self) -> RunState:
        return RunState().apply_all(read_events(self.paths.events).events)

    def record_cancel(self, reason: str) -> None:
        """The tasks still running when the run was cancelled end as failed, with why."""
        for task in self.state().ordered():
            if task.status == "running":
                self.events.emit(
                    "task_failed",
                    task=task.task,
                    family=task.family,
                    duration=round(time.time() - (task.started or self.started), 3),
                    error=f"cancelled by {reason}",
                    cancelled=True,
                )

    def record_stop(self, reason: str) -> None:
        """The run stopped for ``reason`` (its scheduler lost): its workers first end (the run's
        Luigi worker stopped them, they record "cancelled by SIGTERM"; one still running is
        ended here), then the tasks they ran, and the run, say why."""
        import psutil

        with contextlib.suppress(psutil.Error):
            _, alive = psutil.wait_procs(psutil.Process().children(), timeout=WORKERS_END_S)
            end_processes(alive, WORKERS_END_S)  # the run leaves no process behind
        self.reason = reason
        for task in self.state().ordered():
            stopped = task.status in ("failed", "cancelled") and task.error.startswith(
                "cancelled by SIG"
            )  # by Luigi, as the scheduler went
            if task.status == "running" or stopped:
                self.events.emit(
                    "task_failed",
                    task=task.task,
                    family=task.family,
                    duration=round(time.time() - (task.started or self.started), 3),
                    error=reason,
                )

    def finish(self, code: int, status: str, reason: str | None = None) -> RunState:
        """Record the outcome (event, status.json, run report), detach the log, release the
        lock. On a full disk the status (small, written last) is what must get through."""
        duration = round(time.time() - self.started, 3)
        release_space(self.paths)
        try:
            with contextlib.suppress(OSError):
                self.events.emit("run_finished", status=status, exit_code=code, duration=duration)
            state = self.state()
            write_status(
                self.paths,
                status=status,
                exit_code=code,
                finished=time.time(),
                duration=duration,
                best_accuracy=best_accuracy(state),
                best_revision=best_revision(state),
                reason=self.reason or state.failure_reason() or reason or None,
            )
            with contextlib.suppress(OSError):  # the report is rebuilt from the events later
                write_run_report(self.paths)
            return state
        finally:
            if self._handler is not None:
                detach_log(self._handler)
                self._handler = None
            self.lock.release()
