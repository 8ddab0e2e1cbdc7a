"""Run the DAG for `kwsops run`: one run at a time, a run folder, a log, an honest exit code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from contextlib import nullcontext

import luigi
import psutil
from rich.console import Console

from kwsops import exitcodes
from kwsops.config import THREADS_ENV
from kwsops.console import LiveRunView, summary_table, task_label
from kwsops.runreport import write_run_report
from kwsops.runs import (
    AlreadyRunning,
    EventLog,
    RunPaths,
    WorkspaceLock,
    create_run,
    new_run_id,
    read_events,
    write_status,
)
from kwsops.runstate import RunState
from kwsops.secrets import register_config_secrets
from kwsops.workspace import Workspace, WorkspaceError
from tasks.request import (
    RunRequest,
    apply_overrides,
    attach_log,
    build_target,
    effective_workers,
    exit_code_for,
    luigi_build_args,
    preload_for_fork,
    run_environment,
)

log = logging.getLogger("kwsops")


class Cancelled(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT. A KeyboardInterrupt, because that is the
    one exception Luigi lets out of a running task instead of recording it and going on."""


class CancelHandler:
    """SIGTERM/SIGINT stop the run once; a second signal while it unwinds is ignored.

    Tasks running in this process are interrupted where they are. With several Luigi workers
    the tasks run in forked children: raising here would interrupt the parent at an arbitrary
    point (even mid-fork), so the handler instead tells Luigi to take no new task (what its
    own SIGUSR1 handler does) and terminates the children; the run then ends as cancelled.
    A forked child that inherited this handler just dies of the signal, as it would have.
    """

    def __init__(self, tasks_in_process: bool) -> None:
        self.owner = os.getpid()
        self.tasks_in_process = tasks_in_process
        self.requested: str | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if os.getpid() != self.owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.requested is not None:
            return
        self.requested = signal.Signals(signum).name
        if self.tasks_in_process:
            raise Cancelled(self.requested)
        stop_taking_work = signal.getsignal(signal.SIGUSR1)
        if callable(stop_taking_work):
            stop_taking_work(signal.SIGUSR1, frame)
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.terminate()


def run_pipeline(
    ws: Workspace, request: RunRequest, *, quiet: bool = False, console: Console | None = None
) -> int:
    console = console or Console(stderr=False)
    err = Console(stderr=True)
    try:
        ws.require()
    except WorkspaceError as exc:
        err.print(f"[red]kwsops:[/] {exc}")
        return exitcodes.BAD_CONFIG
    lock = WorkspaceLock(ws.lock_file)
    run_id = request.run_id or new_run_id()
    try:
        lock.acquire(run_id, origin=request.origin)
    except AlreadyRunning as exc:
        err.print(f"[yellow]kwsops:[/] {exc}")
        return exitcodes.ALREADY_RUNNING
    try:
        paths = create_run(ws.runs_dir, request.params(), request.origin, run_id=run_id)
        with run_environment(ws, paths):
            return _run_locked(ws, request, paths, quiet=quiet, console=console, err=err)
    finally:
        lock.release()


def _run_locked(
    ws: Workspace,
    request: RunRequest,
    paths: RunPaths,
    *,
    quiet: bool,
    console: Console,
    err: Console,
) -> int:
    register_config_secrets(ws.root / ".dvc" / "config.local")
    handler = attach_log(paths)
    events = EventLog(paths.events)
    started = time.time()
    events.emit(
        "run_started",
        run_id=paths.run_id,
        params=request.params(),
        pid=os.getpid(),
        origin=request.origin,
    )
    apply_overrides(request)
    workers = effective_workers(request)
    cancel = CancelHandler(tasks_in_process=workers == 1)
    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
    result = None
    status = "failed"
    live = (
        LiveRunView(paths.events, console) if not quiet and console.is_terminal else nullcontext()
    )
    try:
        target = build_target(request)
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            os.environ.setdefault(THREADS_ENV, str(threads))
            if not target.complete():  # a no-op run never pays for torch and ClearML
                preload_for_fork(ws)
        build_args = luigi_build_args(request)
        with live:
            result = luigi.build([target], **build_args)
        if cancel.requested:
            raise Cancelled(cancel.requested)
        code = exit_code_for(result, RunState().apply_all(read_events(paths.events).events))
        status = "ok" if code == exitcodes.OK else "failed"
    except Cancelled as exc:
        code, status = exitcodes.CANCELLED, "cancelled"
        log.warning("run cancelled by %s", exc)
        for task in RunState().apply_all(read_events(paths.events).events).ordered():
            if task.status == "running":
                events.emit(
                    "task_failed",
                    task=task.task,
                    family=task.family,
                    duration=round(time.time() - (task.started or started), 3),
                    error=f"cancelled by {exc}",
                )
    except Exception as exc:  # a scheduling or configuration error, not a task failure
        code, status = exitcodes.BAD_CONFIG, "failed"
        log.exception("run could not start")
        err.print(f"[red]kwsops:[/] {exc}")
    finally:
        for sig, handler_fn in previous.items():
            signal.signal(sig, handler_fn)
    duration = round(time.time() - started, 3)
    events.emit("run_finished", status=status, exit_code=code, duration=duration)
    state = RunState().apply_all(read_events(paths.events).events)
    best = next(
        (
            t.summary.get("accuracy")
            for t in state.tasks.values()
            if t.family == "Validate" and t.summary.get("accuracy") is not None
        ),
        None,
    )
    write_status(
        paths,
        status=status,
        exit_code=code,
        finished=time.time(),
        duration=duration,
        best_accuracy=best,
    )
    write_run_report(paths)
    logging.getLogger().removeHandler(handler)
    handler.close()
    _report(state, paths, code, quiet=quiet, console=console, err=err)
    return code


def _report(
    state: RunState, paths: RunPaths, code: int, *, quiet: bool, console: Console, err: Console
) -> None:
    title = f"run {paths.run_id}: {exitcodes.MEANINGS.get(code, code)}"
    if code == exitcodes.OK:
        if not quiet:
            console.print(summary_table(state, title))
        return
    err.print(summary_table(state, title))
    for task in state.failed():
        err.print(f"[red]failed:[/] {task_label(task)}: {task.error}", highlight=False)
    err.print(f"log: {paths.log}")
