"""Make `luigi --module tasks ...` as safe as `kwsops run`.

Luigi's own lock keys on the exact command line, so two runs with different params would both
start. When this module is imported by Luigi's command line, it takes the workspace lock
(exiting at once, with the [retcode] already_running code, when another run holds it), opens a
run folder with its log and event log, and closes the run's status when the process exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from pathlib import Path

from kwsops import exitcodes
from kwsops.runreport import write_run_report
from kwsops.runs import (
    AlreadyRunning,
    EventLog,
    WorkspaceLock,
    create_run,
    new_run_id,
    read_events,
    write_status,
)
from kwsops.runstate import RunState
from kwsops.workspace import WORKSPACE_ENV, Workspace
from tasks.events import RUN_DIR_ENV


def launched_by_luigi_cli(argv: list[str]) -> bool:
    program = Path(argv[0]).name if argv else ""
    return program in ("luigi", "luigi.exe") or (program == "__main__.py" and "luigi" in argv[0])


def guard_luigi_command_line(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    if os.environ.get(RUN_DIR_ENV) or not launched_by_luigi_cli(argv):
        return
    ws = Workspace.at()
    if not ws.is_initialised():
        return  # Luigi reports the failing task; nothing of ours to guard
    lock = WorkspaceLock(ws.lock_file)
    run_id = new_run_id()
    try:
        lock.acquire(run_id, origin="luigi")
    except AlreadyRunning as exc:
        print(f"kwsops: {exc}", file=sys.stderr)
        os._exit(exitcodes.ALREADY_RUNNING)
    paths = create_run(ws.runs_dir, {"argv": argv[1:]}, "luigi", run_id=run_id)
    os.environ[RUN_DIR_ENV] = str(paths.root)
    os.environ[WORKSPACE_ENV] = str(ws.root)
    from tasks.request import attach_log

    attach_log(paths)
    events = EventLog(paths.events)
    started = time.time()
    events.emit(
        "run_started", run_id=run_id, params={"argv": argv[1:]}, pid=os.getpid(), origin="luigi"
    )

    def finish() -> None:
        if os.getpid() != int(lock.holder().get("pid", os.getpid())):
            return  # a forked worker exiting, not the run
        state = RunState().apply_all(read_events(paths.events).events)
        failed = state.failed()
        gate = bool(failed) and all("QualityGate" in task.error for task in failed)
        status = "failed" if failed else "ok"
        code = exitcodes.QUALITY_GATE if gate else exitcodes.TASK_FAILED if failed else exitcodes.OK
        duration = round(time.time() - started, 3)
        events.emit("run_finished", status=status, exit_code=code, duration=duration)
        write_status(paths, status=status, exit_code=code, finished=time.time(), duration=duration)
        write_run_report(paths)
        logging.shutdown()
        lock.release()
        if gate:  # Luigi's [retcode] has no code for it; exit as `kwsops run` does, not with 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    atexit.register(finish)
