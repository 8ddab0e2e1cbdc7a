"""`kwsops init`: make a folder a workspace (git, DVC, the default local remote, luigi.cfg)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from kwsops.versioning.dvc_config import ensure_cache_links
from kwsops.versioning.git import git_commit
from kwsops.versioning.runner import run_dvc, run_git
from kwsops.workspace import Workspace

GITIGNORE_LINES = (
    "# kwsops workspace: DVC versions data/, kwsops keeps local state in .kwsops/",
    # one line per stage folder: DVC stops seeing its .dvc files under a `/data/*/` glob
    "/data/input/",
    "/data/output/",
    "/data/spec_ds/",
    "/data/models/",
    "/.kwsops/",
    "/reports/runs/",
    "/exports/",  # kwsops export writes files built from a revision: rebuilt from its tag
    "__pycache__/",
)


def _ensure_lines(path: Path, lines: tuple[str, ...]) -> None:
    existing = path.read_text().splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if missing:
        text = "\n".join(existing + missing) + "\n"
        path.write_text(text.lstrip("\n"))


def luigi_cfg_template() -> str:
    return resources.files("kwsops").joinpath("templates/luigi.cfg").read_text()


def init_workspace(path: str | os.PathLike | None = None) -> Workspace:
    """Make ``path`` a workspace; safe to run again on an existing one (it fills gaps only)."""
    ws = Workspace.at(path)
    ws.root.mkdir(parents=True, exist_ok=True)
    if not (ws.root / ".git").exists():
        run_git(ws.root, ["init", "-q"])
    if not (ws.root / ".dvc").is_dir():
        run_dvc(ws.root, ["init", "-q"])
        run_dvc(ws.root, ["config", "core.analytics", "false"])
    ensure_cache_links(ws.root)
    for folder in (ws.input_dir, ws.reports_dir, ws.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    _ensure_lines(ws.root / ".gitignore", GITIGNORE_LINES)
    if not ws.luigi_cfg.exists():
        ws.luigi_cfg.write_text(luigi_cfg_template())
    ensure_default_remote(ws)
    scaffold = [".gitignore", ".dvcignore", ".dvc/config", ".dvc/.gitignore", "luigi.cfg"]
    git_commit(ws.root, [p for p in scaffold if (ws.root / p).exists()], "kwsops init")
    return ws


def ensure_default_remote(ws: Workspace) -> None:
    """With no remote configured, add the local-folder remote .kwsops/dvc-remote (in
    .dvc/config.local: the folder is git-ignored, so it is no clone's remote). Its path is
    relative to .dvc/: a copy of the workspace (``cp -a``) pushes to its own folder, not the
    original's. An older workspace's absolute path to its own folder is made relative."""
    from kwsops.versioning.remote import remotes, select_local

    default = next((r for r in remotes(ws.root) if r.default), None)
    if default is None or (default.name == "local" and _absolute_local_remote(ws)):
        select_local(ws.root, ws.local_remote_dir)


def _absolute_local_remote(ws: Workspace) -> bool:
    """config.local names a workspace's .kwsops/dvc-remote by an absolute path: this one's
    (made by an older kwsops) or, in a copy, the original's."""
    local = ws.root / ".dvc" / "config.local"
    text = local.read_text() if local.is_file() else ""
    return any(
        line.split("=", 1)[1].strip().startswith("/")
        and line.rstrip().endswith("/.kwsops/dvc-remote")
        for line in text.splitlines()
        if line.strip().startswith("url")
    )
