"""Versioning stages as plain functions: `dvc add` + `dvc push`, and the git revision."""

from __future__ import annotations

import configparser
import time
from pathlib import Path

from kwsops.atomic import atomic_write_json
from kwsops.pipeline.result import StageResult
from kwsops.workspace import Workspace

DATA_STAGES = ("input", "output", "spec_ds", "models")


def default_remote_id(ws: Workspace) -> dict:
    """Which remote pushes go to, read from DVC's config files without starting DVC.

    Part of every Version* key: selecting another remote pushes everything there once.
    """
    parser = configparser.ConfigParser()
    parser.read([ws.root / ".dvc" / "config", ws.root / ".dvc" / "config.local"])
    name = parser.get("core", "remote", fallback="")
    url = parser.get(f"'remote \"{name}\"'", "url", fallback="") if name else ""
    return {"remote": name, "url": url}


def version_data_stage(ws: Workspace, target: str, key: str, stamp_file: Path) -> StageResult:
    from kwsops.versioning.dvc import version_stage

    started = time.monotonic()
    version = version_stage(ws.root, target)
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


def version_models_stage(
    ws: Workspace, key: str, stamp_file: Path, batch_sizes: list[int], params: dict
) -> StageResult:
    """Version data/models and commit every stage's .dvc file: each training is a revision."""
    from kwsops.versioning.git import git_commit

    result = version_data_stage(ws, "data/models", key, stamp_file)
    paths = [f"data/{name}.dvc" for name in DATA_STAGES if (ws.data_dir / f"{name}.dvc").exists()]
    sha = git_commit(ws.root, paths, revision_message(batch_sizes, params))
    atomic_write_json(
        stamp_file,
        {"key": key, "target": "data/models", "commit": sha, "md5": result.summary.get("md5")},
    )
    detail = f"{result.detail}; commit {sha[:8] if sha else '(no change)'}"
    return StageResult(detail, {**result.summary, "commit": sha})
