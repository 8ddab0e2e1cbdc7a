"""Run the DAG for `kwsops run`: one run at a time, a run folder, a log, an honest exit code."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import nullcontext

import luigi
from luigi.rpc import RPCError
from rich.console import Console
from rich.text import Text

from kwsops import exitcodes
from kwsops.config import THREADS_ENV, available_cores
from kwsops.pipeline.preprocess import NoRecordingsError, require_recordings
from kwsops.pipeline.validate import ValidationInputError
from kwsops.runs.capture import captured_output
from kwsops.runs.folder import RunPaths
from kwsops.runs.live import LiveRunView, print_error, print_outcome
from kwsops.runs.lock import AlreadyRunning
from kwsops.runs.request import RequestError
from kwsops.runs.session import RunSession, exit_code, run_environment
from kwsops.runs.space import free_bytes, is_out_of_space, remove_partial_objects, space_message
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
from tasks.process import STOP_SIGNALS, CancelHandler, Cancelled, install
from tasks.validate import require_models_to_compare

log = logging.getLogger("kwsops")
SPACE_SLACK = 1 << 20  # under this many bytes free after a failed run: the disk is full


def run_pipeline(
    ws: Workspace,
    request: RunRequest,
    *,
    quiet: bool = False,
    console: Console | None = None,
    exiting: bool = False,
) -> int:
    """Run ``request``; its exit code. ``exiting``: the process ends after this (the CLI), so
    a SIGTERM/SIGINT landing once the outcome is decided stays ignored to the end, and the
    process exits with the code recorded, not 143."""
    console = console or Console(stderr=False)
    err = Console(stderr=True)
    try:  # every value and revision checked before anything is recorded as a run
        if request.standalone:  # nothing trained to compare: said before the batch sizes
            require_models_to_compare(ws.require(), request.revisions, request.batch_sizes)
        request = prepare(ws.require(), request)
        if not request.standalone:  # a validate-only run needs no recordings
            require_recordings(ws)
    except (WorkspaceError, RequestError, NoRecordingsError, ValidationInputError) as exc:
        print_error(err, exc)
        return exitcodes.BAD_CONFIG
    session = RunSession(ws, request.params(), request.origin, run_id=request.run_id)
    try:
        session.open()
    except AlreadyRunning as exc:
        print_error(err, exc, style="yellow")
        return exitcodes.ALREADY_RUNNING
    code, status, reason = exitcodes.CANCELLED, "cancelled", None
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        with run_environment(ws, session.paths):
            try:
                code, status = _run_locked(
                    ws, request, session, quiet=quiet, console=console, err=err
                )
            except OutOfSpace as exc:
                code, status, reason = exitcodes.TASK_FAILED, "failed", str(exc)
            finally:
                state = session.finish(code, status, reason)
        _report(state, session.paths, code, quiet=quiet, console=console, err=err)
    finally:
        if not exiting:
            for sig, handler_fn in previous.items():
                signal.signal(sig, handler_fn)
    return code


def _outcome_decided() -> None:
    """From here on a stop signal changes nothing: the run is recorded as what it did."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def lost_scheduler(request: RunRequest, exc: RPCError) -> str:
    """The one line for a run whose central scheduler stopped answering."""
    where = f"{request.scheduler_host}:{request.scheduler_port or 8082}"
    if not request.scheduler_host:
        where = "the central scheduler (luigi.cfg [core])"
    cause = exc.args[0] if exc.args else exc
    return (
        f"lost the scheduler: luigid at {where} stopped answering ({cause}); the stages "
        "running were stopped. Start luigid again and rerun (done stages are kept)"
    )


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
    cancel.install()
    drawing = not quiet and console.is_terminal
    live = LiveRunView(session.paths.events, console) if drawing else nullcontext()
    # forked workers keep off the terminal: their output goes to the run log (a live display
    # may hold rich's locks at the fork; a --quiet run prints only kwsops's own lines)
    install(stdio_log=str(session.paths.log))
    try:
        # what libraries and their C code print (decoders, matplotlib) goes to run.log too
        with captured_output(session.paths.log, stdout=not drawing):
            target = build_target(request)
            if workers > 1:
                threads = max(1, available_cores() // workers)
                os.environ.setdefault(THREADS_ENV, str(threads))
                if needs_preload(target):  # only for stale stages that use torch or ClearML
                    preload_for_fork(ws)
            with live:
                result = luigi.build([target], **luigi_build_args(request))
                if not cancel.requested:
                    _outcome_decided()
        if cancel.requested:
            raise Cancelled(cancel.requested)
        code = exit_code(session.state(), completed=build_succeeded(result))
        if code != exitcodes.OK and not session.state().failure_reason():
            _say_if_out_of_space(ws, err)  # the stage's failure could not even be recorded
        return code, "ok" if code == exitcodes.OK else "failed"
    except Cancelled as exc:
        _outcome_decided()
        log.warning("run cancelled by %s", exc)
        session.record_cancel(str(exc))
        return exitcodes.CANCELLED, "cancelled"
    except OutOfSpace:
        raise
    except RPCError as exc:  # the environment failed, not the configuration nor a task
        _outcome_decided()
        reason = lost_scheduler(request, exc)
        log.error("%s", reason, exc_info=True)
        session.record_stop(reason)
        print_error(err, reason)
        return exitcodes.TASK_FAILED, "failed"
    except Exception as exc:  # a scheduling or configuration error, not a task failure
        _outcome_decided()
        if is_out_of_space(exc):  # an environment failure, not bad configuration
            _say_if_out_of_space(ws, err, getattr(exc, "filename", None), force=True)
        log.exception("run could not start")
        print_error(err, exc)
        return exitcodes.BAD_CONFIG, "failed"
    finally:
        _outcome_decided()
        install(stdio_log=None)


class OutOfSpace(RuntimeError):
    """The disk filled up: the run failed (exit 1), the message names the path and space."""


def _say_if_out_of_space(
    ws: Workspace, err: Console, path: str | None = None, *, force: bool = False
) -> None:
    """A full disk stops a run with one line and what it left half-written removed."""
    if not force and free_bytes(ws.root) > SPACE_SLACK:
        return
    remove_partial_objects(ws.root / ".dvc" / "cache", ws.local_remote_dir)
    message = space_message(path or ws.root, None)
    print_error(err, message)
    raise OutOfSpace(message)


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
