"""Versioning stages as plain functions: `dvc add` + `dvc push`, and the git revision.

A stage's stamp is its last step: VersionModels stamps only once its git commit is made, so a
commit that failed (another process held .git/index.lock, a cancel landed in git) leaves the
stage undone and the next run completes it. A stamp whose commit is missing from git (left by
an older kwsops) does not count either (:func:`pending_commit`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from kwsops.atomic import atomic_write_json
from kwsops.pipeline.result import StageResult
from kwsops.workspace import Workspace

DATA_STAGES = ("input", "output", "spec_ds", "models")


def default_remote_id(ws: Workspace) -> dict:
    """Which remote pushes go to, from DVC's merged config (.dvc/config + config.local).

    Part of every Version* key: selecting another remote pushes everything there once.
    """
    from kwsops.versioning.remote import RemoteError, get_remote

    try:
        remote = get_remote(ws.root)
    except RemoteError:  # none (yet): the stage's push says so
        return {"remote": "", "url": ""}
    url = remote.url
    if remote.kind == "local" and Path(url).is_relative_to(ws.root):  # as written: relative to
        url = os.path.relpath(url, ws.root / ".dvc")  # .dvc/, so a copied workspace keeps its keys
    return {"remote": remote.name, "url": url}


def version_data_stage(
    ws: Workspace,
    target: str,
    key: str,
    stamp_file: Path,
    *,
    stamp: bool = True,
    link: bool = True,
) -> StageResult:
    """`dvc add` + `dvc push` of ``target`` (its files linked into the DVC cache unless
    ``link`` is False); then its stamp, unless the caller stamps later."""
    from kwsops.versioning.dvc import version_stage

    started = time.monotonic()
    version = version_stage(ws.root, target, link=link)
    if stamp:
        atomic_write_json(stamp_file, {"key": key, "target": target, "md5": version.md5})
    detail = f"{target}: {version.push.files} files pushed to {default_remote_id(ws)['remote']}"
    return StageResult(
        detail,
        {
            "md5": version.md5,
            "pushed": version.push.files,
            "seconds": round(time.monotonic() - started, 2),
        },
    )


def revision_message(batch_sizes: list[int], params: dict) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    sizes = ",".join(str(b) for b in batch_sizes)
    return f"kwsops: models for batch sizes {sizes} ({shown})"


def revision_files(ws: Workspace) -> list[str]:
    """What a training's commit holds: every stage's .dvc file, and the .dvcignore that decides
    what data/input.dvc lists."""
    paths = [f"data/{name}.dvc" for name in DATA_STAGES if (ws.data_dir / f"{name}.dvc").exists()]
    return [*paths, *([".dvcignore"] if (ws.root / ".dvcignore").is_file() else [])]


def pending_commit(ws: Workspace) -> list[str]:
    """The revision files that differ from git's HEAD: a training not yet committed."""
    from kwsops.versioning.git import uncommitted

    return uncommitted(ws.root, revision_files(ws))


def version_models_stage(
    ws: Workspace, key: str, stamp_file: Path, batch_sizes: list[int], params: dict
) -> StageResult:
    """Version data/models and commit every stage's .dvc file: each training is a revision.
    The stamp follows the commit (a failed commit leaves the stage to the next run)."""
    from kwsops.versioning.git import git_commit

    result = version_data_stage(ws, "data/models", key, stamp_file, stamp=False)
    sha = git_commit(ws.root, revision_files(ws), revision_message(batch_sizes, params))
    atomic_write_json(
        stamp_file,
        {"key": key, "target": "data/models", "commit": sha, "md5": result.summary.get("md5")},
    )
    detail = f"{result.detail}; commit {sha[:8] if sha else '(no change)'}"
    return StageResult(detail, {**result.summary, "commit": sha})
