"""A workspace: the folder where data, models, reports and their versions live.

Any folder made by ``kwsops init`` is one, and so is the project repo itself. Paths are
resolved from the workspace root, which is the current folder unless ``KWSOPS_WORKSPACE``
says otherwise (Luigi workers started elsewhere use it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

WORKSPACE_ENV = "KWSOPS_WORKSPACE"

GITIGNORE_LINES = (
    "# kwsops workspace: DVC versions data/, kwsops keeps local state in .kwsops/",
    # one line per stage folder: DVC stops seeing its .dvc files under a `/data/*/` glob
    "/data/input/",
    "/data/output/",
    "/data/spec_ds/",
    "/data/models/",
    "/.kwsops/",
    "/reports/runs/",
    "__pycache__/",
)


class WorkspaceError(RuntimeError):
    """The workspace is missing or misconfigured; the message says what to do."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike | None = None) -> Workspace:
        if path is None:
            path = os.environ.get(WORKSPACE_ENV) or os.getcwd()
        return cls(Path(path).expanduser().resolve())

    # data stages (DVC-tracked folders)
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def input_dir(self) -> Path:
        return self.data_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.data_dir / "output"

    @property
    def spec_dir(self) -> Path:
        return self.data_dir / "spec_ds"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def batch_dir(self, batch_size: int) -> Path:
        return self.models_dir / f"batch_{batch_size}"

    # reports
    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def plots_dir(self) -> Path:
        return self.reports_dir / "plots"

    @property
    def runs_dir(self) -> Path:
        return self.reports_dir / "runs"

    @property
    def comparison_report(self) -> Path:
        return self.reports_dir / "comparison_versions.md"

    # local state, git-ignored
    @property
    def state_dir(self) -> Path:
        return self.root / ".kwsops"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "run.lock"

    @property
    def clearml_dir(self) -> Path:
        return self.state_dir / "clearml"

    @property
    def local_remote_dir(self) -> Path:
        return self.state_dir / "dvc-remote"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def stamps_dir(self) -> Path:
        return self.state_dir / "stamps"

    @property
    def luigi_cfg(self) -> Path:
        return self.root / "luigi.cfg"

    def is_initialised(self) -> bool:
        return (self.root / ".dvc").is_dir() and (self.root / ".git").exists()

    def require(self) -> Workspace:
        if not self.is_initialised():
            raise WorkspaceError(
                f"{self.root} is not a kwsops workspace (no .git or .dvc); "
                f"run `kwsops init {self.root}` first"
            )
        return self


def tool(name: str) -> str:
    """The path of a console script installed beside this Python (dvc, luigi, luigid)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise WorkspaceError(
            f"`{name}` is not installed; run `pip install -e .` in the kwsops repo"
        )
    return found


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise WorkspaceError(
            f"`{' '.join(args[:3])}` failed in {cwd}: {detail[-1] if detail else ''}"
        )
    return result


def _ensure_lines(path: Path, lines: tuple[str, ...]) -> None:
    existing = path.read_text().splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if missing:
        text = "\n".join(existing + missing) + "\n"
        path.write_text(text.lstrip("\n"))


def luigi_cfg_template() -> str:
    return resources.files("kwsops").joinpath("templates/luigi.cfg").read_text()


def init_workspace(path: str | os.PathLike | None = None) -> Workspace:
    """Make ``path`` a workspace; safe to run again on an existing one (it fills gaps only)."""
    ws = Workspace.at(path)
    ws.root.mkdir(parents=True, exist_ok=True)
    if not (ws.root / ".git").exists():
        _run(["git", "init", "-q"], ws.root)
    if not (ws.root / ".dvc").is_dir():
        _run([tool("dvc"), "init", "-q"], ws.root)
        _run([tool("dvc"), "config", "core.analytics", "false"], ws.root)
    for folder in (ws.input_dir, ws.reports_dir, ws.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    _ensure_lines(ws.root / ".gitignore", GITIGNORE_LINES)
    if not ws.luigi_cfg.exists():
        ws.luigi_cfg.write_text(luigi_cfg_template())
    ensure_default_remote(ws)
    from kwsops.versioning import git_commit

    scaffold = [".gitignore", ".dvcignore", ".dvc/config", ".dvc/.gitignore", "luigi.cfg"]
    git_commit(ws.root, [p for p in scaffold if (ws.root / p).exists()], "kwsops init")
    return ws


def ensure_default_remote(ws: Workspace) -> None:
    """With no remote configured, add the local-folder remote (in .dvc/config.local, because
    its absolute path belongs to this machine, not to the repo)."""
    probe = subprocess.run(
        [tool("dvc"), "remote", "default"], cwd=ws.root, capture_output=True, text=True
    )
    if probe.returncode == 0 and probe.stdout.strip():
        return
    ws.local_remote_dir.mkdir(parents=True, exist_ok=True)
    _run(
        [tool("dvc"), "remote", "add", "--local", "-d", "-f", "local", str(ws.local_remote_dir)],
        ws.root,
    )
