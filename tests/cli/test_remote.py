"""`kwsops remote`: a URL is checked before it is selected, `remote local` switches back, and
`remote show` prints every URL whole (real dvc config, a real wsgidav server)."""

from __future__ import annotations

from pathlib import Path

from kwsops.versioning.remote import remotes
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.files import git
from tests.helpers.webdav import PASSWORD, USER, WebDAVServer


def default_remote(root: Path) -> str:
    return next(r.name for r in remotes(root) if r.default)


def test_a_url_that_does_not_answer_is_not_selected(workspace: Workspace) -> None:
    ws = workspace
    tracked = (ws.root / ".dvc" / "config").read_bytes()
    result = run_cli(ws, "remote", "webdav", "not-a-url", "--user", "x", check=False,
                     env={"DVC_PASSWORD": "pw"})  # fmt: skip
    assert result.returncode == 1
    assert "not selected" in result.stderr and "default remote is unchanged" in result.stderr
    assert "FAIL" in result.stdout and "server" in result.stdout
    assert (ws.root / ".dvc" / "config").read_bytes() == tracked
    assert git(ws.root, "status", "--porcelain") == ""
    assert default_remote(ws.root) == "local"


def test_select_webdav_then_switch_back_to_local(
    workspace: Workspace, webdav_server: WebDAVServer
) -> None:
    ws = workspace
    long_path = "/team/" + "a-long-folder-name-" * 4 + "kws/"
    url = f"{webdav_server.url}{long_path}"
    run_cli(ws, "remote", "webdav", url, "--user", USER, env={"DVC_PASSWORD": PASSWORD})
    assert default_remote(ws.root) == "webdav"
    shown = run_cli(ws, "remote", "show").stdout
    assert url.rstrip("/") in shown.splitlines()[1]  # whole, on one line
    assert PASSWORD not in shown
    back = run_cli(ws, "remote", "local")
    assert "remote local selected" in back.stdout
    assert default_remote(ws.root) == "local"
    assert "remote = webdav" not in (ws.root / ".dvc" / "config").read_text()
    local = (ws.root / ".dvc" / "config.local").read_text()
    assert "url = ../.kwsops/dvc-remote" in local  # relative: a copy uses its own folder
    assert "ok" in run_cli(ws, "remote", "check").stdout


def test_no_check_selects_a_url_that_does_not_answer_and_exits_0(workspace: Workspace) -> None:
    ws = workspace
    result = run_cli(ws, "remote", "webdav", "webdav://127.0.0.1:9/kws", "--no-check",
                     check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "FAIL" in result.stdout and "remote webdav selected" in result.stdout
    assert default_remote(ws.root) == "webdav"
