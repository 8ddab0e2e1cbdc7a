"""Start, cancel and rerun runs: each run is its own process (``kwsops run``), so the console
stays responsive and the run goes on when the console closes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.runs.folder import RunPaths, effective_status, new_run_id, read_status
from kwsops.tui.monitor import load_json
from kwsops.versioning.runner import tool
from kwsops.workspace import WORKSPACE_ENV, Workspace

RERUN_KEEPS = ("seed", "workers", "target")  # params.json keys passed on as flags by a rerun
DEFAULTS = {"batch_sizes": (16, 32, 64), "epochs": 40, "folds": 5, "learning_rate": 0.001}


class LaunchError(RuntimeError):
    """A run could not be started, cancelled or rerun; the message says why."""


@dataclass(frozen=True)
class LaunchRequest:
    batch_sizes: tuple[int, ...] = DEFAULTS["batch_sizes"]
    epochs: int = DEFAULTS["epochs"]
    folds: int = DEFAULTS["folds"]
    learning_rate: float = DEFAULTS["learning_rate"]
    revisions: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # other `kwsops run` flags a rerun keeps (--seed)

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise LaunchError("choose at least one batch size (a positive integer)")
        if self.epochs < 1:
            raise LaunchError(f"epochs must be at least 1, not {self.epochs}")
        if self.folds < 2:
            raise LaunchError(f"folds must be at least 2 for cross-validation, not {self.folds}")
        if not 0 < self.learning_rate < 1:
            raise LaunchError(f"learning rate must be between 0 and 1, not {self.learning_rate}")

    def arguments(self, run_id: str) -> list[str]:
        args = [
            "--batch-sizes",
            *map(str, self.batch_sizes),
            "--epochs",
            str(self.epochs),
            "--folds",
            str(self.folds),
            "--learning-rate",
            f"{self.learning_rate:g}",
        ]
        if self.revisions:
            args += ["--revisions", *self.revisions]
        for flag, value in self.extra:
            args += [flag, value]
        return [*args, "--run-id", run_id, "--origin", "tui", "--quiet"]

    @classmethod
    def from_params(cls, params: dict) -> LaunchRequest:
        """The request a past run's params.json describes (missing values: the defaults)."""
        try:
            return cls(
                batch_sizes=tuple(
                    int(b) for b in params.get("batch_sizes") or DEFAULTS["batch_sizes"]
                ),
                epochs=int(params.get("epochs") or DEFAULTS["epochs"]),
                folds=int(params.get("folds") or DEFAULTS["folds"]),
                learning_rate=float(params.get("learning_rate") or DEFAULTS["learning_rate"]),
                revisions=tuple(str(r) for r in params.get("revisions") or ()),
                extra=tuple(
                    (f"--{key.replace('_', '-')}", str(params[key]))
                    for key in RERUN_KEEPS
                    if params.get(key) not in (None, "")
                ),
            )
        except (TypeError, ValueError) as exc:
            raise LaunchError(f"params.json cannot be rerun: {exc}") from None


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
        reason = lines[-1] if lines else f"exit code {self.process.returncode}"
        return f"run {self.run_id} did not start: {reason}"


class Launcher:
    def __init__(self, ws: Workspace, command: Sequence[str] | None = None) -> None:
        self.ws = ws
        self._command = list(command) if command else None
        self.launched: list[Launched] = []

    def command(self) -> list[str]:
        return self._command or [tool("kwsops"), "run"]

    def start(self, request: LaunchRequest, run_id: str | None = None) -> Launched:
        run_id = run_id or new_run_id()
        logs = self.ws.state_dir / "tui"
        logs.mkdir(parents=True, exist_ok=True)
        stderr_path = logs / f"launch-{run_id}.log"
        argv = [*self.command(), *request.arguments(run_id)]
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


def rerun_request(ws: Workspace, run_id: str) -> LaunchRequest:
    params = load_json(RunPaths(ws.runs_dir / run_id).params)
    if not params:
        raise LaunchError(f"run {run_id} has no readable params.json to rerun")
    return LaunchRequest.from_params(params)
