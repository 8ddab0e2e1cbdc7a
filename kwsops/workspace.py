"""A workspace: the folder where data, models, reports and their versions live.

Any folder made by ``kwsops init`` is one, and so is the project repo itself. Paths are
resolved from the workspace root, which is the current folder unless ``KWSOPS_WORKSPACE``
says otherwise (Luigi workers started elsewhere use it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WORKSPACE_ENV = "KWSOPS_WORKSPACE"


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
        if not self.root.exists():
            raise WorkspaceError(
                f"{self.root}: no such folder; name a workspace with -C DIR, or make one with "
                f"`kwsops init {self.root}`"
            )
        if not self.root.is_dir():
            raise WorkspaceError(f"{self.root} is a file, not a workspace folder")
        if not self.is_initialised():
            raise WorkspaceError(
                f"{self.root} is not a kwsops workspace (no .git or .dvc); "
                f"run `kwsops init {self.root}` first"
            )
        return self
