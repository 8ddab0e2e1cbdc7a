"""The whole pipeline against a real WebDAV server (wsgidav on 127.0.0.1, basic auth): every
stage pushed, a wiped workspace and a fresh clone restored from it, outages that fail cleanly,
and a password that appears nowhere but .dvc/config.local."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from kwsops import exitcodes
from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs
from kwsops.stamps import file_sha256
from kwsops.workspace import Workspace
from tests.helpers.cli import assert_remote_has_everything, run_cli
from tests.helpers.webdav import PASSWORD, USER, WebDAVServer

pytestmark = pytest.mark.slow
SMALL = ("--batch-sizes", "16", "--epochs", "1", "--folds", "2")
STAGES = ("input", "output", "spec_ds", "models")


def hashes(ws: Workspace) -> dict[str, str]:
    return {
        p.relative_to(ws.data_dir).as_posix(): file_sha256(p)
        for stage in STAGES
        for p in sorted((ws.data_dir / stage).rglob("*"))
        if p.is_file()
    }


def files_containing(root: Path, secret: str) -> list[str]:
    """Every file under root (zip members too) whose bytes hold the secret."""
    needle = secret.encode()
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or path.name == "config.local":
            continue
        data = path.read_bytes()
        if needle in data:
            found.append(str(path))
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                found += [f"{path}!{n}" for n in archive.namelist() if needle in archive.read(n)]
    return found


def use_webdav(ws: Workspace, server: WebDAVServer, password: str = PASSWORD, *flags: str):
    return run_cli(
        ws,
        "remote",
        "webdav",
        f"{server.url}/team/kws/",
        "--user",
        USER,
        *flags,
        env={"DVC_PASSWORD": password},
        check=False,
    )


def test_outages_fail_cleanly_then_every_stage_goes_to_webdav_and_comes_back(
    demo_workspace, webdav_server, tmp_path
):
    """One workspace for both halves (one full pipeline run, not two): the outages first, each
    failing with one line and losing nothing; then the run that recovers pushes every stage,
    and a wiped workspace and a fresh clone are restored from the server alone."""
    ws = demo_workspace
    raw = {p: file_sha256(p) for p in ws.input_dir.rglob("*") if p.is_file()}
    wrong = PASSWORD + "-wrong"
    # the check says why; --no-check selects it anyway (exit 0), so the run meets the wrong
    # password
    selected = use_webdav(ws, webdav_server, wrong, "--no-check")
    assert selected.returncode == 0 and "FAIL" in selected.stdout
    failed = run_cli(ws, "run", *SMALL, check=False)
    assert failed.returncode == exitcodes.TASK_FAILED
    assert "credentials" in failed.stderr or "401" in failed.stderr, failed.stderr
    assert wrong not in failed.stdout + failed.stderr and "Traceback" not in failed.stderr
    assert not (ws.root / ".dvc" / "cache").exists() or not any(
        (ws.root / ".dvc" / "cache").rglob("*.dir")
    ), "nothing was added before the check"

    configured = use_webdav(ws, webdav_server)
    assert configured.returncode == 0, configured.stdout + configured.stderr
    assert "folder" in configured.stdout and PASSWORD not in configured.stdout
    webdav_server.stop()
    down = run_cli(ws, "run", *SMALL, check=False)
    assert down.returncode == exitcodes.TASK_FAILED
    assert "connect" in down.stderr and "Traceback" not in down.stderr, down.stderr

    webdav_server.start()

    def die_mid_push(request) -> None:
        if request.method == "PUT" and webdav_server.count("PUT", status=201) == 20:
            webdav_server.stop_soon()

    webdav_server.on_request = die_mid_push
    cut = run_cli(ws, "run", *SMALL, check=False)
    assert cut.returncode == exitcodes.TASK_FAILED and "Traceback" not in cut.stderr
    webdav_server.on_request = None
    webdav_server.start()
    uploaded = {r.path for r in webdav_server.requests if r.method == "PUT" and r.status == 201}
    mark = len(webdav_server.requests)
    run = run_cli(ws, "run", *SMALL)
    again = [r.path for r in webdav_server.requests[mark:] if r.method == "PUT"]
    assert not set(again) & uploaded, "what reached the server is not uploaded twice"
    assert PASSWORD not in run.stdout + run.stderr
    assert webdav_server.count("PUT", "/team/kws/files/", status=201) > 50
    assert_remote_has_everything(ws)
    assert {p: file_sha256(p) for p in raw} == raw

    before = hashes(ws)
    report = json.loads(ws.comparison_report.with_suffix(".json").read_text())
    for stage in STAGES:
        shutil.rmtree(ws.data_dir / stage)
    shutil.rmtree(ws.root / ".dvc" / "cache")
    run_cli(ws, "pull")
    assert hashes(ws) == before

    clone = Workspace(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(ws.root), str(clone.root)], check=True)
    env = {
        "DVC_HOST": f"{webdav_server.http_url}/team/kws/",
        "DVC_USER": USER,
        "DVC_PASSWORD": PASSWORD,
    }
    run_cli(clone, "pull", env=env)
    assert hashes(clone) == before
    rerun = run_cli(clone, "run", *SMALL, env=env)
    started = {
        e["family"]
        for e in read_events(list_runs(clone.runs_dir)[0].events).events
        if e["event"] == "task_started"
    }
    assert started <= {"VersionModels", "Validate"}, started
    reproduced = json.loads(clone.comparison_report.with_suffix(".json").read_text())
    assert [r["accuracy"]["mean"] for r in reproduced["revisions"]] == [
        r["accuracy"]["mean"] for r in report["revisions"]
    ]
    assert PASSWORD not in rerun.stdout + rerun.stderr

    leaks = files_containing(ws.root, PASSWORD) + files_containing(clone.root, PASSWORD)
    assert leaks == [] and files_containing(ws.root, wrong) == []
    history = subprocess.run(
        ["git", "log", "-p", "--all"], cwd=ws.root, capture_output=True, text=True, check=True
    ).stdout
    assert PASSWORD not in history and wrong not in history
