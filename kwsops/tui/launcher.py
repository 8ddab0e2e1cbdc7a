"""Start, cancel and rerun runs: each run is its own process (``kwsops run``, ``kwsops
rerun ID``), so the console stays responsive and the run goes on when the console closes.
The process checks its request before it records a run; when it refuses, its one-line reason
(stderr, kept in .kwsops/tui/launch-<run-id>.log) becomes a notification."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.runs.folder import RunPaths, effective_status, new_run_id, read_status
from kwsops.runs.request import RunRequest
from kwsops.text import clean_text
from kwsops.versioning.runner import tool
from kwsops.workspace import WORKSPACE_ENV, Workspace


class LaunchError(RuntimeError):
    """A run could not be started, cancelled or rerun; the message says why."""


@dataclass
class Launched:
    run_id: str
    process: subprocess.Popen
    stderr_path: Path
    reported: bool = field(default=False)

    def early_failure(self, runs_dir: Path) -> str | None:
        """Why the process ended before making its run folder, once; None while all is well."""
        if self.reported or self.process.poll() is None or (runs_dir / self.run_id).exists():
            return None
        self.reported = True
        try:
            lines = [x for x in self.stderr_path.read_text(errors="replace").splitlines() if x]
        except OSError:
            lines = []
        reason = clean_text(lines[-1]) if lines else f"exit code {self.process.returncode}"
        return f"run {self.run_id} did not start: {reason}"


class Launcher:
    def __init__(self, ws: Workspace, command: Sequence[str] | None = None) -> None:
        self.ws = ws
        self._command = list(command) if command else None
        self.launched: list[Launched] = []

    def command(self) -> list[str]:
        return self._command or [tool("kwsops")]

    def start(self, request: RunRequest, run_id: str | None = None) -> Launched:
        """Start ``kwsops run`` (or ``validate``) as the request says."""
        request.run_id, request.origin = run_id or new_run_id(), "tui"
        return self._spawn(request.run_id, [*request.arguments(), "--quiet"])

    def rerun(self, past: str, run_id: str | None = None) -> Launched:
        """Start ``kwsops rerun PAST``: its command and resolved parameters again."""
        run_id = run_id or new_run_id()
        return self._spawn(
            run_id, ["rerun", past, "--run-id", run_id, "--origin", "tui", "--quiet"]
        )

    def _spawn(self, run_id: str, arguments: list[str]) -> Launched:
        logs = self.ws.state_dir / "tui"
        logs.mkdir(parents=True, exist_ok=True)
        stderr_path = logs / f"launch-{run_id}.log"
        argv = [*self.command(), *arguments]
        env = {**os.environ, WORKSPACE_ENV: str(self.ws.root)}
        with open(stderr_path, "wb") as stderr:
            try:
                process = subprocess.Popen(
                    argv,
                    cwd=self.ws.root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot start `{argv[0]}`: {exc}") from None
        launched = Launched(run_id, process, stderr_path)
        self.launched.append(launched)
        return launched

    def early_failures(self) -> list[str]:
        found = [m for x in self.launched if (m := x.early_failure(self.ws.runs_dir))]
        self.launched = [x for x in self.launched if x.process.poll() is None]
        return found


def cancel_run(ws: Workspace, run_id: str) -> int:
    """Ask run ``run_id`` to stop (SIGTERM to its pid); the run marks itself cancelled."""
    status = read_status(RunPaths(ws.runs_dir / run_id)) or {}
    if effective_status(status) != "running":
        raise LaunchError(f"run {run_id} is not running ({effective_status(status)})")
    pid = int(status["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise LaunchError(f"run {run_id} already ended (pid {pid} is gone)") from None
    except PermissionError:
        raise LaunchError(f"not allowed to stop run {run_id} (pid {pid})") from None
    return pid
