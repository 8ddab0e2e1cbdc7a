"""A full disk is an environment failure (issue 20, item 4): on a real 13 MB tmpfs the run
stops at a versioning push with one line naming the path and the space needed, exit 1,
status.json `failed` with that reason, no logging tracebacks and no half-written objects;
with room again the next run succeeds. Needs root (mount); otherwise skipped, saying why."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kwsops.runs.folder import list_runs
from kwsops.versioning.init import init_workspace
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.slow

RUN_ARGS = ("run", "--batch-sizes", "16", "--epochs", "1", "--folds", "2")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=13m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_fails_the_run_cleanly_and_the_next_run_succeeds(
    small_disk: Path, demo_source: Path
) -> None:
    ws = init_workspace(small_disk / "ws")
    shutil.copytree(demo_source, ws.input_dir, dirs_exist_ok=True)
    result = run_cli(ws, *RUN_ARGS, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "Logging error" not in output and "Traceback" not in output
    said = [line for line in output.splitlines() if "no space left on the device of" in line]
    assert len(said) == 1 and str(ws.root) in said[0] and "MB" in said[0], output[-3000:]
    status = json.loads(list_runs(ws.runs_dir)[0].status.read_text())
    assert status["status"] == "failed" and status["exit_code"] == 1
    assert "no space left" in status["reason"]
    partial = [p for p in (ws.root / ".dvc").rglob("*.tmp")] + list(
        ws.local_remote_dir.rglob("*.tmp")
    )
    assert partial == []
    assert not list(ws.data_dir.glob(".*tmp-*"))  # no half-built stage folder either
    subprocess.run(["mount", "-o", "remount,size=80m", str(small_disk)], check=True)
    again = run_cli(ws, *RUN_ARGS, check=False)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert run_cli(ws, "verify").returncode == 0
