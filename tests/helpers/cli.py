"""The real `kwsops` command line in a subprocess, and checks on what it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]


def run_cli(
    ws: Workspace | Path,
    *args: str,
    check: bool = True,
    env: dict | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run the real `kwsops` command line in a workspace (from ``cwd``, default: in it)."""
    root = ws.root if isinstance(ws, Workspace) else Path(ws)
    result = subprocess.run(
        [sys.executable, "-m", "kwsops.cli", "-C", str(root), *args],
        cwd=cwd or root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kwsops {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def assert_remote_has_everything(ws: Workspace) -> None:
    """`dvc status -c`: every versioned stage is on the default remote."""
    status = subprocess.run([tool("dvc"), "status", "-c", "--json"], cwd=ws.root,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(status.stdout or "{}") == {}, status.stdout
