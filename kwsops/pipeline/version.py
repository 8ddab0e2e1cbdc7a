"""Versioning stages as plain functions: `dvc add` + `dvc push`, and the git revision.

A stage's stamp is its last step: VersionModels stamps only once its git commit is made, so a
commit that failed (another process held .git/index.lock, a cancel landed in git) leaves the
stage undone and the next run completes it. A stamp whose commit is missing from git (left by
an older kwsops) does not count either (:func:`pending_commit`).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from kwsops.atomic import atomic_write_json
from kwsops.pipeline.result import StageResult
from kwsops.stamps import read_stamp_file
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
    from kwsops.versioning.integrity import snapshot

    started = time.monotonic()
    before = (read_stamp_file(stamp_file) or {}).get("files")
    now = snapshot(ws.root / target)
    changed = {f"{target}/{rel}" for rel, seen in now.items()
               if isinstance(before, dict) and before.get(rel) not in (None, seen)}  # fmt: skip
    version = version_stage(ws.root, target, link=link, changed=changed)
    record = {"key": key, "target": target, "md5": version.md5,
              "files": snapshot(ws.root / target)}  # fmt: skip
    if stamp:
        atomic_write_json(stamp_file, record)
    detail = f"{target}: {version.push.files} files pushed to {default_remote_id(ws)['remote']}"
    return StageResult(
        detail,
        {
            "md5": version.md5,
            "pushed": version.push.files,
            "seconds": round(time.monotonic() - started, 2),
            **({} if stamp else {"record": record}),  # for the caller that stamps later
        },
    )


def require_versioned(ws: Workspace) -> None:
    """Before a training's commit: every .dvc file it commits names objects the cache holds
    and the default remote has; else VersioningError, one line, and nothing is committed."""
    from kwsops.versioning.dvc import dvc_push, dvc_status_cloud
    from kwsops.versioning.errors import VersioningError
    from kwsops.versioning.integrity import missing_objects

    dvc_files = [ws.root / f for f in revision_files(ws) if f.endswith(".dvc")]
    missing = missing_objects(ws.root, dvc_files)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise VersioningError(
            f"not committed: {missing[0]}{more} is not in the DVC cache; run `kwsops verify "
            "--repair` or `kwsops pull`, then `kwsops run` again"
        )
    targets = [f.relative_to(ws.root).as_posix() for f in dvc_files]
    lacking = sorted(dvc_status_cloud(ws.root, targets))
    if lacking:  # pushed once already (remote emptied since?): push what it lacks, ask again
        dvc_push(ws.root, targets)
        lacking = sorted(dvc_status_cloud(ws.root, targets))
    if lacking:
        remote = default_remote_id(ws)["remote"]
        raise VersioningError(
            f"not committed: the remote '{remote}' lacks data of {', '.join(lacking)} after a "
            "push; check it with `kwsops remote check`, then `kwsops run` again"
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
    require_versioned(ws)
    sha = git_commit(ws.root, revision_files(ws), revision_message(batch_sizes, params))
    atomic_write_json(stamp_file, {**result.summary.pop("record"), "commit": sha})
    detail = f"{result.detail}; commit {sha[:8] if sha else '(no change)'}"
    return StageResult(detail, {**result.summary, "commit": sha})


def versioned_intact(ws: Workspace, target: str, stamp_file: Path) -> bool:
    """The cheap check of a Version* stage: its folder and .dvc file are as it left them
    (the .dvc file names the object it stamped, the cache holds that object, the files are
    those versioned). A stamp of an older kwsops (no file list) is trusted."""
    from kwsops.versioning.dvc_config import cache_dir
    from kwsops.versioning.integrity import object_path, pointer

    stamp = read_stamp_file(stamp_file) or {}
    md5 = str(stamp.get("md5") or "")
    if not md5 or "files" not in stamp:
        return True
    if pointer(ws.root / f"{target}.dvc") != md5 or not (ws.root / target).is_dir():
        return False
    if not object_path(cache_dir(ws.root), md5).is_file():
        return False
    return _as_versioned(ws, target, stamp_file, stamp, "")


def output_intact(ws: Workspace, version_stamp: Path, target: str, prefix: str = "") -> bool:
    """The cheap check of a stage whose output a Version* stage versions (``prefix``: its part
    of ``target``, e.g. batch_16/): its files are those versioned. An output the stage
    rewrote since (its own stamp is another file) is for the Version* stage to check."""
    from kwsops.stamps import STAMP_NAME
    from kwsops.versioning.integrity import snapshot

    stamp = read_stamp_file(version_stamp) or {}
    record = stamp.get("files")
    if not isinstance(record, dict):
        return True  # never versioned: the stage's own stamp decides
    now = snapshot(ws.root / target / prefix, prefix)
    mark = prefix + STAMP_NAME
    if now.get(mark) != record.get(mark):
        return True
    return _as_versioned(ws, target, version_stamp, stamp, prefix, now)


def _as_versioned(
    ws: Workspace,
    target: str,
    stamp_file: Path,
    stamp: dict,
    prefix: str,
    now: dict | None = None,
) -> bool:
    """Whether the files under ``target/prefix`` are those the Version* ``stamp`` recorded:
    one stat each (size, mtime as when versioned); a file whose stat differs (relinked,
    pulled, repaired, touched) is hashed against its versioned name, so only content decides,
    and its new stat is recorded (hashed once, not each run). A file that is not its cache
    object's inode (computed anew with the same bytes, or a copy) needs that object to hash to
    its name too: else the stage is versioned again, which mends the object."""
    from kwsops.versioning.dvc_config import cache_dir
    from kwsops.versioning.integrity import (
        file_md5,
        listing,
        object_intact,
        object_path,
        snapshot,
    )

    record = {rel: seen for rel, seen in stamp["files"].items() if rel.startswith(prefix)}
    now = snapshot(ws.root / target / prefix, prefix) if now is None else now
    if now == record:
        return True
    if set(now) != set(record):
        return False
    cache = cache_dir(ws.root)
    names = listing(cache, str(stamp.get("md5") or "")) or {}
    folder, differ = ws.root / target, [rel for rel in now if now[rel] != record[rel]]

    def same(rel: str) -> bool:  # the same bytes, and the cache holds them intact
        obj = object_path(cache, names.get(rel, "0"))
        if file_md5(folder / rel) != names.get(rel) or not obj.is_file():
            return False
        return os.path.samefile(obj, folder / rel) or object_intact(cache, names[rel])

    try:
        if not all(same(rel) for rel in differ):
            return False
    except OSError:
        return False
    stamp["files"].update({rel: now[rel] for rel in differ})
    with contextlib.suppress(OSError):  # only a shortcut for the next check
        atomic_write_json(stamp_file, stamp)
    return True


def restore_stage(ws: Workspace, target: str, key: str, prefix: str = "") -> StageResult | None:
    """A stage output deleted or damaged in the workspace, back from the DVC cache when the
    cache holds it whole and stamped with ``key``; None when it must be computed."""
    from kwsops.versioning.integrity import restore

    started = time.monotonic()
    dest = ws.root / target / prefix
    count = restore(ws.root, ws.root / f"{target}.dvc", prefix, dest, key)
    if count is None:
        return None
    where = f"{target}/{prefix}".rstrip("/")
    seconds = round(time.monotonic() - started, 2)
    return StageResult(f"{where}: {count} files restored from the DVC cache",
                       {"restored": count, "seconds": seconds})  # fmt: skip
