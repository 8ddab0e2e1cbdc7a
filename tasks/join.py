"""`kwsops worker`: another Luigi worker for the active run, on this machine or another."""

from __future__ import annotations

import json
import logging
import signal

import luigi
from luigi.rpc import RPCError
from rich.console import Console
from rich.text import Text

from kwsops import exitcodes
from kwsops.runs.capture import captured_output
from kwsops.runs.events import read_events
from kwsops.runs.folder import RunPaths
from kwsops.runs.live import print_error
from kwsops.runs.lock import WorkspaceLock
from kwsops.runs.session import (
    attach_log,
    detach_log,
    exit_code,
    register_workspace_secrets,
    run_environment,
)
from kwsops.runs.state import RunState
from kwsops.workspace import Workspace
from tasks.luigi_config import (
    RunRequest,
    apply_overrides,
    build_succeeded,
    build_target,
    luigi_build_args,
)
from tasks.process import CancelHandler, Cancelled, install
from tasks.runner import lost_scheduler

log = logging.getLogger("kwsops")


def join_run(
    ws: Workspace,
    scheduler_host: str,
    scheduler_port: int,
    *,
    workers: int = 1,
    console: Console | None = None,
) -> int:
    """An extra worker for the active run (this or another machine sharing the workspace's
    storage): same params, same task ids, so the central scheduler hands it the tasks no
    other worker has taken. It takes no lock: the run it joins holds it."""
    err = Console(stderr=True)
    lock = WorkspaceLock(ws.lock_file)
    holder = lock.holder() if lock.is_held() else {}
    paths = RunPaths(ws.runs_dir / str(holder.get("run_id", "")))
    if not holder or not paths.params.exists():
        err.print(
            f"[red]kwsops:[/] no active run in {ws.root} to join; start one with "
            "`kwsops run --scheduler-host HOST` first"
        )
        return exitcodes.BAD_CONFIG
    request = RunRequest.from_params(json.loads(paths.params.read_text()))
    request.scheduler_host, request.scheduler_port = scheduler_host, scheduler_port
    request.workers = workers
    register_workspace_secrets(ws)
    handler = attach_log(paths)
    cancel = CancelHandler()
    previous = cancel.install()
    try:
        # as in the run: what Luigi, the libraries and the forked tasks print goes to run.log
        with run_environment(ws, paths), captured_output(paths.log):
            apply_overrides(request)
            install(stdio_log=str(paths.log))
            result = luigi.build([build_target(request)], **luigi_build_args(request))
    except Cancelled as exc:  # this worker stops; the run it joined goes on without it
        err.print(Text(f"kwsops: worker for run {paths.run_id} cancelled by {exc}"))
        return exitcodes.CANCELLED
    except RPCError as exc:  # luigid is gone: the run records it; this worker says so and ends
        reason = lost_scheduler(request, exc)
        log.error("worker: %s", reason, exc_info=True)
        print_error(err, reason)
        return exitcodes.TASK_FAILED
    finally:
        install(stdio_log=None)
        for sig, handler_fn in previous.items():
            signal.signal(sig, handler_fn)
        detach_log(handler)
    state = RunState().apply_all(read_events(paths.events).events)
    (console or Console()).print(f"worker done for run {paths.run_id}")
    return exit_code(state, completed=build_succeeded(result))
