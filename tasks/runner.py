"""Run the DAG for `kwsops run`: one run at a time, a run folder, a log, an honest exit code."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import nullcontext

import luigi
from rich.console import Console
from rich.text import Text

from kwsops import exitcodes
from kwsops.config import THREADS_ENV, available_cores
from kwsops.runs.folder import RunPaths
from kwsops.runs.live import LiveRunView, print_error, print_outcome
from kwsops.runs.lock import AlreadyRunning
from kwsops.runs.request import RequestError
from kwsops.runs.session import RunSession, exit_code, run_environment
from kwsops.runs.state import RunState
from kwsops.workspace import Workspace, WorkspaceError
from tasks.luigi_config import (
    RunRequest,
    apply_overrides,
    build_succeeded,
    build_target,
    effective_workers,
    luigi_build_args,
    preload_for_fork,
    prepare,
)
from tasks.process import CancelHandler, Cancelled, install

log = logging.getLogger("kwsops")


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
    cancel = CancelHandler()
    previous = cancel.install()
    drawing = not quiet and console.is_terminal
    live = LiveRunView(session.paths.events, console) if drawing else nullcontext()
    # forked workers keep off the display's terminal: their output goes to the run log
    install(stdio_log=str(session.paths.log) if drawing else None)
    try:
        target = build_target(request)
        if workers > 1:
            threads = max(1, available_cores() // workers)
            os.environ.setdefault(THREADS_ENV, str(threads))
            if needs_preload(target):  # only for stale stages that use torch or ClearML
                preload_for_fork(ws)
        with live:
            result = luigi.build([target], **luigi_build_args(request))
        if cancel.requested:
            raise Cancelled(cancel.requested)
        code = exit_code(session.state(), completed=build_succeeded(result))
        return code, "ok" if code == exitcodes.OK else "failed"
    except Cancelled as exc:
        log.warning("run cancelled by %s", exc)
        session.record_cancel(str(exc))
        return exitcodes.CANCELLED, "cancelled"
    except Exception as exc:  # a scheduling or configuration error, not a task failure
        log.exception("run could not start")
        print_error(err, exc)
        return exitcodes.BAD_CONFIG, "failed"
    finally:
        install(stdio_log=None)
        for sig, handler_fn in previous.items():
            signal.signal(sig, handler_fn)


def needs_preload(target: luigi.Task) -> bool:
    """Whether a stale task of the DAG imports torch and ClearML (Version* tasks only run
    dvc): then they are imported once here, before Luigi forks the workers."""
    seen: set[str] = set()
    todo = [target]
    while todo:
        task = todo.pop()
        if task.task_id in seen or task.complete():
            continue
        seen.add(task.task_id)
        if getattr(task, "preloads", True):
            return True
        todo += luigi.task.flatten(task.requires())
    return False


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
