"""Shared fixtures: a fresh HOME (nothing read from or written to the developer's home), a tiny
demo data set synthesised once per session, workspaces copied from one made by the real
`kwsops init` once per session, a small trained workspace built once, a workspace the demo ran
through the pipeline in once, and real servers (luigid, WebDAV) on 127.0.0.1.

The suite runs in parallel (pytest-xdist): every xdist worker is its own session, with its own
HOME, temp folders and free ports; what is built "once per session" is built once per worker,
except the workspace template, which the workers share under a file lock."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from kwsops.versioning.init import init_workspace
from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.trained import Trained, build_trained
from tests.helpers.webdav import WebDAVServer, free_port
from tests.helpers.workspaces import clone_workspace

HOME_KEY = pytest.StashKey[str]()
DEMO_RUN = ("run", "--batch-sizes", "16", "--epochs", "1", "--folds", "2")


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` modules (whole pipeline runs) first, each group in pytest-randomly's order:
    xdist hands out whole files in this order (`--no-loadscope-reorder`), so the long files
    start at once and the short ones fill the workers' time after them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(HOME_KEY, None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny demo recordings (6 labels x 8 clips, 16 of unknown speech, 4 speakers), synthesised
    once per session."""
    from kwsops.audio.demo_data import generate_demo_data

    root = tmp_path_factory.mktemp("demo-source") / "input"
    generate_demo_data(root, per_label=8, speakers=4, seed=42)
    return root


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace as `kwsops init` makes it (git init, dvc init, the default remote, the first
    commit), made once per test session and shared by the xdist workers, as DVC's own test
    fixtures do: copying it takes milliseconds, `kwsops init` seconds. Tests of `kwsops init`
    itself call it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: its own temp folder
        return init_workspace(tmp_path_factory.mktemp("template") / "ws").root
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker
    root = shared / "template" / "ws"
    with FileLock(shared / "template.lock"):
        if not root.is_dir():  # built aside and renamed: a failed build is never used
            building = Path(tempfile.mkdtemp(prefix="template-", dir=shared)) / "ws"
            init_workspace(building)
            root.parent.mkdir()
            building.rename(root)
    return root


@pytest.fixture(scope="session")
def new_workspace(workspace_template: Path) -> Callable[[Path], Workspace]:
    """``new_workspace(path)``: a fresh workspace at ``path``, a copy of the template."""
    return lambda path: clone_workspace(workspace_template, path)


@pytest.fixture
def workspace(tmp_path: Path, new_workspace: Callable[[Path], Workspace]) -> Workspace:
    return new_workspace(tmp_path / "ws")


@pytest.fixture
def demo_workspace(workspace: Workspace, demo_source: Path) -> Workspace:
    shutil.copytree(demo_source, workspace.input_dir, dirs_exist_ok=True)
    return workspace


@pytest.fixture(scope="session")
def demo_ran(
    tmp_path_factory: pytest.TempPathFactory, demo_source: Path, workspace_template: Path
) -> Workspace:
    """The demo recordings run through the whole pipeline once per session (per xdist worker):
    `kwsops run` with batch 16, 1 epoch, 2 folds, the other parameters luigi.cfg's defaults.
    Read only: a test that runs more in it, or damages it, works on a ``clone_workspace`` copy.
    Every module that needs such a run shares it: one run per worker instead of one per module."""
    ws = clone_workspace(workspace_template, tmp_path_factory.mktemp("demo-ran") / "ws")
    shutil.copytree(demo_source, ws.input_dir, dirs_exist_ok=True)
    run_cli(ws, *DEMO_RUN)
    return ws


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


@pytest.fixture(scope="session")
def suite_seed(pytestconfig: pytest.Config) -> int:
    """The seed of this session's sampled loops: pytest-randomly's (printed in the header;
    `--randomly-seed=N` repeats a session), a fixed one without the plugin."""
    seed = pytestconfig.getoption("randomly_seed", None)
    return seed if isinstance(seed, int) else 2005


@pytest.fixture
def webdav_server(tmp_path: Path) -> Iterator[WebDAVServer]:
    """A started WebDAV server over tmp_path/"dav"; stopped after the test."""
    with WebDAVServer(tmp_path / "dav") as server:
        yield server


@pytest.fixture(scope="session")
def trained_workspace(
    tmp_path_factory: pytest.TempPathFactory, workspace_template: Path
) -> Trained:
    """tests/helpers/trained.py's workspace, built once per session (per xdist worker) and
    shared by the tests that only read it; a test that changes it works on a copy
    (tests/registry/conftest.py's ``trained_copy``)."""
    return build_trained(tmp_path_factory.mktemp("validate") / "ws", workspace_template)
