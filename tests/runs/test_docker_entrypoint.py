"""The container's entrypoint, run outside Docker (no engine here): the same commands the
image runs, on a fresh clone of a workspace whose data lives only in its DVC remote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs
from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace
from tests.helpers.cli import REPO

pytestmark = pytest.mark.slow
SMALL = ("--batch-sizes", "16", "--epochs", "1", "--folds", "2")


def entrypoint(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KWSOPS_WORKSPACE": str(workspace),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        ["sh", str(REPO / "docker" / "entrypoint.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_entrypoint_pulls_a_clone_then_runs(demo_ran, tmp_path):
    origin = demo_ran  # the session's run with SMALL; only read: cloned and pulled from
    clone = Workspace(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(origin.root), str(clone.root)], check=True)
    assert not clone.input_dir.exists()
    subprocess.run(
        [tool("dvc"), "remote", "add", "--local", "-d", "origin", str(origin.local_remote_dir)],
        cwd=clone.root,
        check=True,
    )

    result = entrypoint(clone.root, *SMALL, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in clone.input_dir.iterdir()) == sorted(
        p.name for p in origin.input_dir.iterdir()
    )
    assert (clone.batch_dir(16) / "fold_1" / "model.safetensors").is_file()
    started = {
        e["family"]
        for e in read_events(list_runs(clone.runs_dir)[0].events).events
        if e["event"] == "task_started"
    }
    assert not {"Train", "TrainFold", "Preprocess"} & started, "pulled data is reused"
    assert clone.comparison_report.is_file()


def test_entrypoint_in_an_empty_volume_says_what_is_missing(tmp_path):
    result = entrypoint(tmp_path / "empty", *SMALL)
    assert result.returncode == 4
    assert "no recordings" in result.stderr + result.stdout
    assert (tmp_path / "empty" / ".dvc").is_dir()
