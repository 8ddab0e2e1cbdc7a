"""kwsops.versioning.remote and versioning against a real wsgidav server (basic auth) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from dvc.config import Config

from kwsops.secrets import scrub
from kwsops.versioning.dvc import (
    dvc_add,
    dvc_pull,
    dvc_push,
    dvc_status_cloud,
    models_at_revision,
    version_stage,
)
from kwsops.versioning.errors import RemoteError, VersioningError
from kwsops.versioning.git import git_commit
from kwsops.versioning.remote import (
    add_webdav,
    check_remote,
    configure_from_env,
    get_remote,
    webdav_url,
)
from tests.helpers.files import digest, git, write_tree
from tests.helpers.webdav import PASSWORD, USER, Request, WebDAVServer

STAGES = ("input", "output", "spec_ds", "models")


@pytest.fixture(scope="session")
def template(workspace_template: Path) -> Path:
    """One `kwsops init` per session (tests/conftest.py); tests get copies of it."""
    return workspace_template


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    with Config(dvc_dir=str(root / ".dvc")).edit("local") as local:
        local["remote"]["local"]["url"] = str(root / ".kwsops" / "dvc-remote")
    write_tree(root / "data" / "input", {f"yes/spk{i}__yes.wav": os.urandom(600) for i in range(3)})
    return root


@pytest.fixture
def dav_ws(ws: Path, webdav_server: WebDAVServer) -> Path:
    add_webdav(ws, f"{webdav_server.url}/team/kws/", USER, PASSWORD)
    return ws


def one_line_without_password(message: str) -> str:
    assert "\n" not in message and PASSWORD not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("webdavs://host/webdav/", ("webdavs://host/webdav", None, None)),
        ("host/webdav", ("webdavs://host/webdav", None, None)),
        ("http://u:p%40ss@127.0.0.1:8080/dav", ("webdav://127.0.0.1:8080/dav", "u", "p@ss")),
        ("https://example.org", ("webdavs://example.org", None, None)),
    ],
)
def test_webdav_url(raw: str, expected: tuple) -> None:
    assert webdav_url(raw) == expected


def test_bad_url_and_scrub() -> None:
    with pytest.raises(RemoteError, match="not a WebDAV URL"):
        webdav_url("s3://bucket/x")
    text = "GET https://me:hunter2@host/x failed; hunter2"
    assert scrub(text, ["hunter2"]) == "GET https://me:***@host/x failed; ***"
    assert "hunter%2F2" not in scrub("x hunter%2F2 y", ["hunter/2"])  # URL-encoded too


def test_password_only_in_config_local(dav_ws: Path, webdav_server: WebDAVServer) -> None:
    ws = dav_ws
    assert git_commit(ws, [".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"], "Remote")
    assert PASSWORD not in (ws / ".dvc" / "config").read_text()
    config_local = ws / ".dvc" / "config.local"
    assert PASSWORD in config_local.read_text() and config_local.stat().st_mode & 0o077 == 0
    assert ".dvc/config.local" not in git(ws, "ls-files").splitlines()
    for tracked in git(ws, "ls-files").splitlines():
        assert PASSWORD not in (ws / tracked).read_text(errors="replace"), tracked
    grep = subprocess.run(["git", "grep", "-I", PASSWORD, "HEAD"], cwd=ws, capture_output=True)
    assert grep.returncode == 1  # no match anywhere in the commit
    assert PASSWORD not in git(ws, "log", "--all", "-p")  # nor in any commit ever made
    chosen = get_remote(ws)
    assert (chosen.name, chosen.url, chosen.kind, chosen.default, chosen.user) == (
        "webdav",
        f"{webdav_server.url}/team/kws",
        "webdav",
        True,
        USER,
    )
    assert chosen.password == PASSWORD and PASSWORD not in repr(chosen)
    # the local-folder default no longer wins over the tracked WebDAV default
    assert "remote = local" not in config_local.read_text()


def test_check_remote_creates_missing_folder(dav_ws: Path, webdav_server: WebDAVServer) -> None:
    assert not (webdav_server.root / "team").exists()
    check = check_remote(dav_ws)
    assert check.ok, check.reason
    assert [name for name, passed, _ in check.checks if passed] == [
        "server",
        "credentials",
        "folder",
        "write",
    ]
    assert (webdav_server.root / "team" / "kws").is_dir()
    assert webdav_server.files() == {}  # the probe file is gone
    assert check_remote(dav_ws).checks[2] == ("folder", True, "/webdav/team/kws/ exists")


def test_stages_roundtrip_and_fresh_clone(
    dav_ws: Path,
    webdav_server: WebDAVServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = dav_ws
    write_tree(ws / "data" / "output", {f"yes/{i}.wav": os.urandom(400) for i in range(3)})
    write_tree(ws / "data" / "spec_ds", {"train.safetensors": os.urandom(900), "meta.json": b"{}"})
    write_tree(ws / "data" / "models", {"batch_16/fold_0/model.safetensors": os.urandom(800)})
    expected = {stage: digest(ws / "data" / stage) for stage in STAGES}
    for stage in ("input", "models"):  # as the pipeline does it, stage by stage
        assert version_stage(ws, f"data/{stage}").push.remote == "webdav"
    dvc_add(ws, "data/output"), dvc_add(ws, "data/spec_ds")  # or several in one push
    assert dvc_push(ws, ["data/output", "data/spec_ds"]).files == 3 + 2  # .dir listings not
    tracked = [*(f"data/{s}.dvc" for s in STAGES), ".dvc/config", ".dvc/.gitignore", ".gitignore"]
    rev = git_commit(ws, tracked, "Version all")
    assert rev and dvc_status_cloud(ws) == {}

    for stage in STAGES:
        shutil.rmtree(ws / "data" / stage)
    shutil.rmtree(ws / ".dvc" / "cache")
    dvc_pull(ws)
    assert {stage: digest(ws / "data" / stage) for stage in STAGES} == expected

    # a fresh clone has the tracked URL but no credentials; the env supplies them
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ws), str(clone)], check=True)
    monkeypatch.setenv("DVC_HOST", webdav_server.http_url + "/team/kws")
    monkeypatch.setenv("DVC_USER", USER)
    monkeypatch.setenv("DVC_PASSWORD", PASSWORD)
    assert configure_from_env(clone) is True
    assert configure_from_env(clone) is False  # already so: nothing to do
    assert git(clone, "check-ignore", ".dvc/config.local") == ".dvc/config.local"
    models = models_at_revision(clone, rev, "batch_16", tmp_path / "rev-models")
    assert digest(models) == {k[9:]: v for k, v in expected["models"].items()}
    assert dvc_pull(clone, ["data/input", "data/models"]).files >= 4
    assert digest(clone / "data" / "input") == expected["input"]


def test_wrong_password_and_stopped_server(dav_ws: Path, webdav_server: WebDAVServer) -> None:
    ws = dav_ws
    add_webdav(ws, f"{webdav_server.url}/team/kws", USER, PASSWORD + "-wrong")
    check = check_remote(ws)
    assert not check.ok and "401" in one_line_without_password(check.reason)
    with pytest.raises(VersioningError, match="401") as wrong:
        version_stage(ws, "data/input")
    one_line_without_password(str(wrong.value))

    add_webdav(ws, webdav_server.url + "/team/kws", USER, PASSWORD)
    before = digest(ws / "data" / "input")
    webdav_server.stop()
    with pytest.raises(VersioningError, match="cannot connect.*refused") as down:
        version_stage(ws, "data/input")
    one_line_without_password(str(down.value))
    assert digest(ws / "data" / "input") == before
    assert not (ws / ".dvc" / "cache").exists() and not (ws / "data" / "input.dvc").exists()


def test_server_stopped_mid_push_then_next_push_completes(
    dav_ws: Path,
    webdav_server: WebDAVServer,
) -> None:
    ws = dav_ws
    write_tree(ws / "data" / "output", {f"w/{i:03}.wav": os.urandom(256 + i) for i in range(60)})
    assert check_remote(ws).ok

    def stop_after_some_puts(request: Request) -> None:
        if request.method == "PUT" and webdav_server.count("PUT", "/team/kws/files/") == 12:
            webdav_server.stop_soon()

    webdav_server.on_request = stop_after_some_puts
    with pytest.raises(VersioningError) as cut:
        version_stage(ws, "data/output")
    one_line_without_password(str(cut.value))
    on_server = webdav_server.files()
    assert 12 <= len(on_server) < 61
    webdav_server.on_request = None
    webdav_server.start()  # same port, same folder
    puts_before = len(webdav_server.requests)

    result = dvc_push(ws, ["data/output"])
    assert result.files == 60 - len(on_server) and dvc_status_cloud(ws, ["data/output"]) == {}
    again = [r for r in webdav_server.requests[puts_before:] if r.method == "PUT"]
    assert not {r.path.rsplit("/files/", 1)[-1] for r in again} & {
        p.rsplit("/files/", 1)[-1] for p in on_server
    }


def test_killed_push_cut_upload_is_repaired(dav_ws: Path, webdav_server: WebDAVServer) -> None:
    ws = dav_ws
    big = os.urandom(1_200_000)
    write_tree(ws / "data" / "models", {"batch_16/fold_0/model.safetensors": big})
    assert check_remote(ws).ok
    webdav_server.put_delay = 0.01  # ~150 blocks of 8 KiB: the upload takes > 1.5 s
    code = (
        "import sys; from kwsops.versioning.dvc import *; version_stage(sys.argv[1], 'data/models')"
    )
    pusher = subprocess.Popen([sys.executable, "-c", code, str(ws)])
    md5 = hashlib.md5(big).hexdigest()
    on_server = webdav_server.root / "team" / "kws" / "files" / "md5" / md5[:2] / md5[2:]
    deadline = time.monotonic() + 60
    while not (on_server.exists() and on_server.stat().st_size > 0):
        assert time.monotonic() < deadline and pusher.poll() is None
        time.sleep(0.02)
    for proc in [*psutil.Process(pusher.pid).children(recursive=True), pusher]:
        os.kill(proc.pid, signal.SIGKILL)  # the python process and its `dvc push`
    pusher.wait()
    time.sleep(0.3)  # let the server finish writing what it got
    assert on_server.stat().st_size < len(big)  # a cut-off object under its final name

    webdav_server.put_delay = 0
    result = dvc_push(ws, ["data/models"])  # DVC's own lock files are still there
    assert result.repaired == 1 and result.files >= 1
    assert on_server.read_bytes() == big and dvc_status_cloud(ws, ["data/models"]) == {}
