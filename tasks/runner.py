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
from rich.text import Text

from kwsops import exitcodes
from kwsops.config import THREADS_ENV
from kwsops.runs.folder import RunPaths
from kwsops.runs.live import LiveRunView, print_error, print_outcome
from kwsops.runs.lock import AlreadyRunning
from kwsops.runs.request import RequestError
from kwsops.runs.session import RunSession, exit_code, run_environment
from kwsops.runs.state import RunState
from kwsops.workspace import Workspace, WorkspaceError
from tasks.request import (
    RunRequest,
    apply_overrides,
    build_succeeded,
    build_target,
    effective_workers,
    luigi_build_args,
    preload_for_fork,
    prepare,
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
    try:  # every value and revision checked before anything is recorded as a run
        request = prepare(ws.require(), request)
    except (WorkspaceError, RequestError) as exc:
        print_error(err, exc)
        return exitcodes.BAD_CONFIG
    session = RunSession(ws, request.params(), request.origin, run_id=request.run_id)
    try:
        session.open()
    except AlreadyRunning as exc:
        print_error(err, exc, style="yellow")
        return exitcodes.ALREADY_RUNNING
    code, status = exitcodes.CANCELLED, "cancelled"
    with run_environment(ws, session.paths):
        try:
            code, status = _run_locked(ws, request, session, quiet=quiet, console=console, err=err)
        finally:
            state = session.finish(code, status)
    _report(state, session.paths, code, quiet=quiet, console=console, err=err)
    return code


def _run_locked(
    ws: Workspace,
    request: RunRequest,
    session: RunSession,
    *,
    quiet: bool,
    console: Console,
    err: Console,
) -> tuple[int, str]:
    """Build the target; (exit code, status) whatever happens, for the session to record."""
    apply_overrides(request)
    workers = effective_workers(request)
    cancel = CancelHandler(tasks_in_process=workers == 1)
    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
    live = (
        LiveRunView(session.paths.events, console)
        if not quiet and console.is_terminal
        else nullcontext()
    )
    try:
        target = build_target(request)
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            os.environ.setdefault(THREADS_ENV, str(threads))
            if not target.complete():  # a no-op run never pays for torch and ClearML
                preload_for_fork(ws)
        with live:
            result = luigi.build([target], **luigi_build_args(request))
        if cancel.requested:
            raise Cancelled(cancel.requested)
        code = exit_code(session.state(), completed=build_succeeded(result))
        return code, "ok" if code == exitcodes.OK else "failed"
    except Cancelled as exc:
        log.warning("run cancelled by %s", exc)
        for task in session.state().ordered():
            if task.status == "running":
                session.events.emit(
                    "task_failed",
                    task=task.task,
                    family=task.family,
                    duration=round(time.time() - (task.started or session.started), 3),
                    error=f"cancelled by {exc}",
                    cancelled=True,
                )
        return exitcodes.CANCELLED, "cancelled"
    except Exception as exc:  # a scheduling or configuration error, not a task failure
        log.exception("run could not start")
        print_error(err, exc)
        return exitcodes.BAD_CONFIG, "failed"
    finally:
        for sig, handler_fn in previous.items():
            signal.signal(sig, handler_fn)


def _report(
    state: RunState, paths: RunPaths, code: int, *, quiet: bool, console: Console, err: Console
) -> None:
    """The outcome: a table on a terminal; plain, unwrapped lines elsewhere (cron mail, logs).
    Each failure is printed once (in the table, or as its own line)."""
    title = f"run {paths.run_id}: {exitcodes.MEANINGS.get(code, code)}"
    out = console if code == exitcodes.OK else err
    if code == exitcodes.OK and quiet:
        return
    print_outcome(out, state, title)
    if code != exitcodes.OK:
        out.print(Text(f"log: {paths.log}"), soft_wrap=True)
