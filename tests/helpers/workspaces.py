"""Workspaces copied, not rebuilt: the session's `kwsops init` template, or a workspace a
fixture has already run the pipeline in, copied per test so that a test may change it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kwsops.workspace import Workspace


def clone_workspace(source: Path, dest: Path) -> Workspace:
    """A copy of the workspace at ``source`` at ``dest`` (a path that does not exist yet), as
    `cp -a` makes it: hard links between the data and the DVC cache stay links, a FIFO or a
    socket in data/input stays one, symbolic links are copied as links. The workspace's remote
    is a path relative to .dvc/, so the copy pushes to its own."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    return Workspace.at(dest)
