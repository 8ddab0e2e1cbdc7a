"""Make `luigi --module tasks ...` as safe as `kwsops run`.

Luigi's own lock keys on the exact command line, so two runs with different params would both
start. When this module is imported by Luigi's command line, it opens a :class:`RunSession`
(the workspace lock, exiting at once with the [retcode] already_running code when another run
holds it; a run folder with its log and event log) and finishes it when the process exits,
with the same exit-code rule as `kwsops run`. SIGTERM/SIGINT cancel it as they cancel
`kwsops run` (exit code 130), forked workers run inside :mod:`tasks.process`, and the
workspace's secrets are masked in what it logs, also when it joins another run's workers.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from types import TracebackType

import luigi.configuration
import luigi.interface

from kwsops import exitcodes
from kwsops.runs.events import RUN_DIR_ENV
from kwsops.runs.lock import AlreadyRunning
from kwsops.runs.request import RequestError
from kwsops.runs.session import RunSession, exit_code, register_workspace_secrets
from kwsops.workspace import WORKSPACE_ENV, Workspace
from tasks.luigi_config import check_config
from tasks.process import CancelHandler, Cancelled, install
from tasks.workers import WorkerFactory


def launched_by_luigi_cli(argv: list[str]) -> bool:
    program = Path(argv[0]).name if argv else ""
    return program in ("luigi", "luigi.exe") or (program == "__main__.py" and "luigi" in argv[0])


def _quiet_cancel(kind: type[BaseException], value: BaseException, tb: TracebackType | None):
    """A cancelled run says so in one line, not with a KeyboardInterrupt traceback."""
    if isinstance(value, Cancelled):
        print(f"luigi: run cancelled by {value}", file=sys.stderr)
        return
    sys.__excepthook__(kind, value, tb)


def guard_luigi_command_line(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    if not launched_by_luigi_cli(argv):
        return
    ws = Workspace.at()
    if not ws.is_initialised():
        return  # Luigi reports the failing task; nothing of ours to guard
    register_workspace_secrets(ws)
    install()
    # Luigi's command line builds with its own factory: its worker's stop must end too
    luigi.interface._WorkerSchedulerFactory = WorkerFactory
    # the workspace lock (below; a joined worker: its run's) guards the workspace; Luigi's own
    # lock keys on the command line machine-wide, so the same command in another workspace, or
    # a second worker joining a run, would exit 3 without a word
    luigi.configuration.get_config().set("core", "no_lock", "true")
    if os.environ.get(RUN_DIR_ENV):
        return  # a worker of a run another process holds
    try:  # a luigi.cfg mistake, in one line and before anything is recorded
        check_config()
    except RequestError as exc:
        print(f"luigi: {exc}", file=sys.stderr)
        os._exit(exitcodes.BAD_CONFIG)
    session = RunSession(ws, {"argv": argv[1:]}, "luigi")
    try:
        session.open()
    except AlreadyRunning as exc:
        print(f"kwsops: {exc}", file=sys.stderr)
        os._exit(exitcodes.ALREADY_RUNNING)
    os.environ[RUN_DIR_ENV] = str(session.paths.root)
    os.environ[WORKSPACE_ENV] = str(ws.root)
    owner = os.getpid()
    cancel = CancelHandler()
    cancel.install()
    sys.excepthook = _quiet_cancel

    def finish() -> None:
        if os.getpid() != owner:
            return  # a forked worker exiting, not the run
        if cancel.requested:
            session.record_cancel(cancel.requested)
            code, status = exitcodes.CANCELLED, "cancelled"
        else:
            # Luigi's own [retcode] decides the code of an unfinished run; record what we know
            code = exit_code(session.state(), completed=True)
            status = "ok" if code == exitcodes.OK else "failed"
        session.finish(code, status)
        if code not in (exitcodes.OK, exitcodes.TASK_FAILED):
            # Luigi's [retcode] has no such code (the quality gate's 5): exit as `kwsops run` does
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    atexit.register(finish)
