"""Make `luigi --module tasks ...` as safe as `kwsops run`.

Luigi's own lock keys on the exact command line, so two runs with different params would both
start. When this module is imported by Luigi's command line, it opens a :class:`RunSession`
(the workspace lock, exiting at once with the [retcode] already_running code when another run
holds it; a run folder with its log and event log) and finishes it when the process exits,
with the same exit-code rule as `kwsops run`.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

from kwsops import exitcodes
from kwsops.runs.events import RUN_DIR_ENV
from kwsops.runs.lock import AlreadyRunning
from kwsops.runs.session import RunSession, exit_code
from kwsops.workspace import WORKSPACE_ENV, Workspace


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
    session = RunSession(ws, {"argv": argv[1:]}, "luigi")
    try:
        session.open()
    except AlreadyRunning as exc:
        print(f"kwsops: {exc}", file=sys.stderr)
        os._exit(exitcodes.ALREADY_RUNNING)
    os.environ[RUN_DIR_ENV] = str(session.paths.root)
    os.environ[WORKSPACE_ENV] = str(ws.root)
    owner = os.getpid()

    def finish() -> None:
        if os.getpid() != owner:
            return  # a forked worker exiting, not the run
        state = session.state()
        # Luigi's own [retcode] decides the code of an unfinished run; record what we know
        code = exit_code(state, completed=True)
        session.finish(code, "ok" if code == exitcodes.OK else "failed")
        if code not in (exitcodes.OK, exitcodes.TASK_FAILED):
            # Luigi's [retcode] has no such code (the quality gate's 5): exit as `kwsops run` does
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    atexit.register(finish)
