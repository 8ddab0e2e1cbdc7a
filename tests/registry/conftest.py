"""A private copy of the session's trained workspace per test: promoting writes git tags."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kwsops.workspace import Workspace
from tests.helpers.trained import Trained


@pytest.fixture
def trained_copy(trained_workspace: Trained, tmp_path: Path, monkeypatch) -> Trained:
    root = tmp_path / "ws"
    shutil.copytree(trained_workspace.ws.root, root, symlinks=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("KWSOPS_TORCH_THREADS", "1")  # no idle OpenMP spinning on a shared machine
    t = trained_workspace
    return Trained(Workspace(root), t.weak_sha, t.weak_task, t.strong_sha, t.strong_task)
