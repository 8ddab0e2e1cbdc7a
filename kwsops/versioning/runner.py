"""Run git and dvc: the one subprocess runner of kwsops.

Every call runs in its own session (neither tool can prompt on the terminal), with stdin
closed and a time limit, and is retried while the tool says another process holds its lock.
A child is never killed while it can still clean up: on a time-out or an interrupt (a
cancelled run) it gets SIGTERM and ``TERM_GRACE`` seconds to remove its own lock files
(git's index.lock, DVC's repo lock); only one that ignores SIGTERM that long is killed.
A dvc child also dies with the process that started it, even one killed by SIGKILL
(``PR_SET_PDEATHSIG``, :mod:`kwsops.procs`): no orphaned `dvc push` keeps DVC's repo lock.
A failure becomes a one-line :class:`VersioningError` without secrets.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from kwsops.procs import PDEATHSIG_PROLOGUE
from kwsops.secrets import scrub
from kwsops.versioning.dvc_config import known_secrets
from kwsops.versioning.errors import VersioningError

DVC_TIMEOUT = float(os.environ.get("KWSOPS_DVC_TIMEOUT", "3600"))
GIT_TIMEOUT = 120.0
# seconds to keep retrying while another dvc/git process holds its lock
LOCK_WAIT = float(os.environ.get("KWSOPS_LOCK_WAIT", "120"))
TERM_GRACE = 30.0  # seconds a child has to exit after SIGTERM before it is killed
DVC_BUSY = ("Unable to acquire lock", "is busy, it is being blocked by")
GIT_BUSY = ("index.lock",)


def tool(name: str) -> str:
    """The path of a console script installed beside this Python (dvc, luigi, luigid)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise VersioningError(
            f"`{name}` is not installed; run `pip install -e .` in the kwsops repo"
        )
    return found


def relative(ws_root: Path, target: str | os.PathLike) -> str:
    """``target`` as a posix path relative to the workspace root."""
    path = Path(target)
    if path.is_absolute():
        path = path.resolve().relative_to(Path(ws_root).resolve())
    return path.as_posix().rstrip("/")


def _reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR:", "fatal:", "error:"))]
    line = re.sub(r"^(ERROR|fatal|error):\s*", "", (errors or lines or ["no output"])[0])
    return re.sub(r"\s*Having any troubles\?.*$", "", line)[:500]


def _failure(cwd: Path, cmd: list[str], reason: str) -> VersioningError:
    words = [a for a in cmd[1:] if not a.startswith("-") and "=" not in a]
    what = " ".join([Path(cmd[0]).name, *words[:1]])
    message = f"`{what}` failed in {cwd}: {reason}"
    return VersioningError(scrub(message, known_secrets(cwd)))


def stop(proc: subprocess.Popen, grace: float = TERM_GRACE) -> None:
    """SIGTERM the child's process group, wait up to ``grace`` seconds, then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(OSError, ValueError):
        proc.communicate(timeout=1)  # close the pipes


def _launch(cmd: list[str]) -> list[str]:
    """What is executed for ``cmd``: dvc through a prologue that ties it to this process."""
    if Path(cmd[0]).name == "dvc":
        main = "from dvc.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        return [sys.executable, "-P", "-c", PDEATHSIG_PROLOGUE + main, str(os.getpid()), *cmd[1:]]
    return cmd


def _once(cwd: Path, cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.Popen(
        _launch(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise _failure(cwd, cmd, "stopped after the time limit") from None
    except BaseException:  # a cancel (KeyboardInterrupt, SystemExit) lands here: clean up first
        stop(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def run(
    cwd: str | os.PathLike,
    cmd: list[str],
    *,
    busy: tuple[str, ...] = (),
    check: bool = True,
    timeout: float = GIT_TIMEOUT,
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd``; while its output names one of ``busy`` (another process holds
    the lock), wait and retry for up to ``LOCK_WAIT`` seconds."""
    cwd = Path(cwd)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        proc = _once(cwd, cmd, timeout)
        output = f"{proc.stderr}\n{proc.stdout}"
        if proc.returncode and any(m in output for m in busy) and time.monotonic() < deadline:
            time.sleep(1.0)
        elif check and proc.returncode:
            raise _failure(cwd, cmd, _reason(output))
        else:
            return proc


def run_dvc(
    ws_root: str | os.PathLike, args: list[str], *, timeout: float = 0, check: bool = True
) -> subprocess.CompletedProcess:
    cmd = [tool("dvc"), *args]
    return run(ws_root, cmd, busy=DVC_BUSY, check=check, timeout=timeout or DVC_TIMEOUT)


def run_git(
    ws_root: str | os.PathLike, args: list[str], *, check: bool = True, timeout: float = GIT_TIMEOUT
) -> subprocess.CompletedProcess:
    return run(ws_root, ["git", *args], busy=GIT_BUSY, check=check, timeout=timeout)
