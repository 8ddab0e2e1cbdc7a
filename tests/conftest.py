"""Shared fixtures: a fresh HOME (nothing read from or written to the developer's home), a tiny
demo data set synthesised once per session, and workspaces made by the real `kwsops init`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from webdav_server import free_port

from kwsops.workspace import Workspace, init_workspace, tool

REPO = Path(__file__).resolve().parents[1]
HOME_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    home = tempfile.mkdtemp(prefix="kwsops-test-home-")
    config.stash[HOME_KEY] = home
    os.environ["HOME"] = home  # like a fresh machine: no ~/.gitconfig, no ~/clearml.conf
    for name in (
        "KWSOPS_WORKSPACE",
        "KWSOPS_RUN_DIR",
        "CLEARML_CONFIG_FILE",
        "DVC_HOST",
        "DVC_USER",
        "DVC_PASSWORD",
        "CLEARML_API_HOST",
        "CLEARML_API_ACCESS_KEY",
        "CLEARML_API_SECRET_KEY",
    ):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(HOME_KEY, None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny demo recordings (6 labels x 8 clips, 4 speakers), synthesised once per session."""
    from kwsops.demo_data import generate_demo_data

    root = tmp_path_factory.mktemp("demo-source") / "input"
    generate_demo_data(root, per_label=8, speakers=4, seed=42)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws")


@pytest.fixture
def demo_workspace(workspace: Workspace, demo_source: Path) -> Workspace:
    shutil.copytree(demo_source, workspace.input_dir, dirs_exist_ok=True)
    return workspace


def run_cli(
    ws: Workspace | Path,
    *args: str,
    check: bool = True,
    env: dict | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run the real `kwsops` command line in a workspace."""
    root = ws.root if isinstance(ws, Workspace) else Path(ws)
    result = subprocess.run(
        [sys.executable, "-m", "kwsops.cli", "-C", str(root), *args],
        cwd=root,
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


@dataclass
class Luigid:
    """A real luigid central scheduler on 127.0.0.1."""

    port: int
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[Luigid]:
    port = free_port()
    logdir = tmp_path / "luigid"
    logdir.mkdir()
    process = subprocess.Popen(
        [tool("luigid"), "--address", "127.0.0.1", "--port", str(port), "--logdir",
         str(logdir), "--state-path", str(logdir / "state.pickle")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Luigid(port, process)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "luigid did not start"
        time.sleep(0.1)
    yield server
    server.stop()


def assert_remote_has_everything(ws: Workspace) -> None:
    """`dvc status -c`: every versioned stage is on the default remote."""
    status = subprocess.run([tool("dvc"), "status", "-c", "--json"], cwd=ws.root,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(status.stdout or "{}") == {}, status.stdout
