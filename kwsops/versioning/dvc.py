"""Data versions: DVC add/push/pull of stage folders, and data/models at a git revision.

DVC runs through :mod:`kwsops.versioning.runner` (own session, time limit, SIGTERM on cancel);
a failure becomes a `VersioningError`: one line, no password. One `dvc add` and
one `dvc push` per stage folder, since DVC's per-call overhead dominates with small files.

One copy on disk: before its first `dvc add` a workspace gets the cache link type its file
system allows (:func:`kwsops.versioning.dvc_config.ensure_cache_links`): with hard links DVC
links each file into the cache in place and makes it read-only; the stages replace files (temp
folder, rename), never write through them. Raw data is linked too, bytes and mtime unchanged
(mode read-only); `link=False` (`[VersionInput] link = false`) adds it with `--no-relink`, a
copy in the cache that never touches the workspace.
A killed `dvc push` leaves `.dvc/tmp/lock` (an fcntl lock the kernel releases) and maybe its
pid in `.dvc/tmp/rwlock` (DVC drops dead pids): the next command recovers. A WebDAV server
may keep a cut-off upload under its final name, which DVC then counts as pushed: a marker in
.kwsops/ stays until a push to WebDAV succeeds, and the next push first deletes remote objects
whose size differs from the cache's.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kwsops.atomic import atomic_write_json, replace_dir
from kwsops.progress import ProgressFn, no_progress
from kwsops.versioning.dvc_config import cache_dir, ensure_cache_links, read_config
from kwsops.versioning.errors import RemoteError, VersioningError
from kwsops.versioning.git import has_file, resolve_commit
from kwsops.versioning.ignore import ignore_unreadable
from kwsops.versioning.integrity import (
    drop_changed_objects,
    object_path,
    repair_objects,
    walk_files,
)
from kwsops.versioning.remote import (
    check_remote,
    get_remote,
    missing_objects,
    remove_partial_uploads,
)
from kwsops.versioning.runner import relative, run_dvc
from kwsops.workspace import Workspace

log = logging.getLogger("kwsops")


@dataclass(frozen=True)
class PushResult:
    remote: str
    files: int  # files uploaded (a folder's .dir listing, which DVC counts too, is not one)
    seconds: float
    repaired: int = 0  # cut-off uploads of an earlier push deleted before this one


@dataclass(frozen=True)
class PullResult:
    files: int  # objects fetched from the remote
    seconds: float


@dataclass(frozen=True)
class StageVersion:
    dvc_file: Path
    md5: str
    push: PushResult


def _dvc_file(ws_root: Path, target: str) -> str:
    rel = relative(ws_root, target)
    return rel if rel.endswith(".dvc") else f"{rel}.dvc"


def _dvc_files(ws_root: Path, targets: list[str] | None) -> list[str]:
    """The targets' .dvc files; all of them (two levels deep) when None. Explicit, because
    DVC's own search skips data/ when .gitignore has `/data/*/` (it asks about "data/")."""
    if targets is not None:
        return [_dvc_file(ws_root, target) for target in targets]
    found = [*Path(ws_root).glob("*.dvc"), *Path(ws_root).glob("[!.]*/*.dvc")]
    return sorted(p.relative_to(ws_root).as_posix() for p in found if p.is_file())


def _count(output: str, verb: str) -> int:
    found = re.search(rf"(\d+) files? {verb}", output)
    return int(found.group(1)) if found else 0


def _outs(dvc_file: Path) -> list[dict[str, Any]]:
    from ruamel.yaml import YAML

    return list((YAML(typ="safe").load(dvc_file.read_text()) or {}).get("outs") or [])


def holds_symlinks(folder: Path) -> bool:
    """Whether a symlink other than to a folder is under ``folder``."""
    return any(entry.is_symlink() and not entry.is_dir() for entry in walk_files(folder))


def dvc_add(
    ws_root: Path, target: str, *, link: bool = True, changed: set[str] | None = None
) -> Path:
    """`dvc add <target>`: its files are cached (linked, per cache.type; with ``link=False``
    copied, the workspace never touched: `--no-relink`); the .dvc path. Entries DVC cannot read
    (FIFOs, sockets, dangling links) are .dvcignore'd first. A folder holding symlinks is never
    relinked: DVC would replace each link by the file it points to. ``changed``: files known
    to have changed since they were versioned (their old objects are checked first)."""
    rel = relative(ws_root, target)
    if not (Path(ws_root) / rel).exists():
        raise VersioningError(f"cannot version {rel}: it does not exist in {ws_root}")
    ignore_unreadable(Path(ws_root), rel)
    if link and holds_symlinks(Path(ws_root) / rel):
        log.info("%s holds symlinks: copied into the DVC cache, not linked (DVC would replace "
                 "each link by the file it points to)", rel)  # fmt: skip
        link = False
    drop_changed_objects(Path(ws_root), Path(ws_root) / f"{rel}.dvc", changed or set())
    run_dvc(ws_root, ["add", *([] if link else ["--no-relink"]), rel])
    if link and _needs_relink(Path(ws_root), rel):
        # `dvc add` links only the files whose content is new to the cache; a rerun rewrites
        # the others (same bytes, new files): link them too, or they are stored twice. Never
        # to an object whose bytes do not hash to its name: such an object is mended first
        repair_objects(Path(ws_root), Path(ws_root) / f"{rel}.dvc")
        run_dvc(ws_root, ["checkout", "--relink", f"{rel}.dvc"])
    return Path(ws_root) / f"{rel}.dvc"


def _needs_relink(ws_root: Path, rel: str) -> bool:
    """With hard links: whether a regular file under ``rel`` is not linked (one stat each);
    with reflinks a copy cannot be told from a reflink: always."""
    kind = next(iter(read_config(ws_root)["cache"].get("type") or []), "")
    if kind == "reflink":
        return True
    if kind != "hardlink":
        return False
    return any(entry.is_file(follow_symlinks=False) and entry.stat().st_nlink == 1
               for entry in walk_files(ws_root / rel))  # fmt: skip


def _cache_objects(ws_root: Path, dvc_files: list[str]) -> dict[str, int]:
    """md5 -> size of every cached object the .dvc files reference (folders expanded)."""
    cache = cache_dir(ws_root)
    objects: dict[str, int] = {}
    pending = [str(out.get("md5") or "") for f in dvc_files if (Path(ws_root) / f).is_file()
               for out in _outs(Path(ws_root) / f)]  # fmt: skip
    while pending:
        oid = pending.pop()
        path = cache / "files" / "md5" / oid[:2] / oid[2:]
        if oid and path.is_file():
            objects[oid] = path.stat().st_size
            if oid.endswith(".dir"):
                pending += [entry["md5"] for entry in json.loads(path.read_text())]
    return objects


def _listings_missing(ws_root: Path, dvc_files: list[str], remote: str) -> int:
    """How many of the targets' folder listings (.dir objects) the remote lacks: DVC counts
    each one it uploads as a pushed file, but a listing is no file of the data."""
    listings = [str(out.get("md5") or "") for f in dvc_files if (ws_root / f).is_file()
                for out in _outs(ws_root / f)]  # fmt: skip
    listings = sorted({oid for oid in listings if oid.endswith(".dir")})
    return len(missing_objects(ws_root, listings, remote)) if listings else 0


def dvc_push(
    ws_root: Path,
    targets: list[str],
    remote: str | None = None,
    jobs: int | None = None,
    progress: ProgressFn = no_progress,
) -> PushResult:
    """Push the targets' data; DVC uploads only what the remote lacks (--jobs: DVC's default)."""
    ws_root, chosen = Path(ws_root), get_remote(Path(ws_root), remote)
    dvc_files = _dvc_files(ws_root, targets)
    marker = Workspace(ws_root).state_dir / f"push-pending-{chosen.name}.json"
    started, repaired = time.monotonic(), 0
    try:
        if chosen.kind == "webdav":
            earlier = json.loads(marker.read_text())["targets"] if marker.exists() else []
            if earlier:
                progress(0, 1, f"checking what an unfinished push left on {chosen.name}")
                objects = _cache_objects(ws_root, sorted({*earlier, *dvc_files}))
                repaired = remove_partial_uploads(ws_root, objects, chosen.name)
            atomic_write_json(marker, {"targets": sorted({*earlier, *dvc_files})})
        progress(0, 1, f"pushing {', '.join(dvc_files)} to {chosen.name}")
        listings = _listings_missing(ws_root, dvc_files, chosen.name)
        jobs_args = ["-j", str(jobs)] if jobs else []
        proc = run_dvc(ws_root, ["push", "-r", chosen.name, *jobs_args, *dvc_files])
    except VersioningError:
        check = check_remote(ws_root, chosen.name) if chosen.kind == "webdav" else None
        if check is None or check.ok:
            raise
        raise VersioningError(f"cannot push to '{chosen.name}': {check.reason}") from None
    marker.unlink(missing_ok=True)
    pushed = max(0, _count(proc.stdout, "pushed") - listings)
    progress(1, 1, f"{pushed} files pushed to {chosen.name}")
    return PushResult(chosen.name, pushed, time.monotonic() - started, repaired)


def dvc_pull(
    ws_root: Path, targets: list[str] | None = None, remote: str | None = None, jobs: int = 0
) -> PullResult:
    """Fetch and check out the targets (all when None); never forces over unsaved files."""
    started, dvc_files = time.monotonic(), _dvc_files(ws_root, targets)
    args = ["pull", *(["-r", remote] if remote else []), *(["-j", str(jobs)] if jobs else [])]
    listings = _listings_uncached(Path(ws_root), dvc_files)
    proc = run_dvc(ws_root, [*args, *dvc_files])
    fetched = max(0, _count(proc.stdout, "fetched") - listings)
    return PullResult(fetched, time.monotonic() - started)


def _listings_uncached(ws_root: Path, dvc_files: list[str]) -> int:
    """How many of the targets' folder listings (.dir objects) the local cache lacks: DVC
    counts each one it fetches as a file, but a listing is no file of the data."""
    cache = cache_dir(ws_root)
    listings = {str(out.get("md5") or "") for f in dvc_files if (ws_root / f).is_file()
                for out in _outs(ws_root / f)}  # fmt: skip
    return sum(1 for oid in listings
               if oid.endswith(".dir") and not object_path(cache, oid).is_file())  # fmt: skip


def dvc_status_cloud(
    ws_root: Path, targets: list[str] | None = None, remote: str | None = None
) -> dict:
    """`dvc status -c --json`: {} when the remote has everything the targets need."""
    args = ["status", "-c", "--json", *(["-r", remote] if remote else [])]
    proc = run_dvc(ws_root, [*args, *_dvc_files(ws_root, targets)])
    text = proc.stdout.strip()
    return json.loads(text[text.find("{") :]) if "{" in text else {}


def version_stage(
    ws_root: Path,
    target: str,
    remote: str | None = None,
    progress: ProgressFn = no_progress,
    *,
    link: bool = True,
    changed: set[str] | None = None,
) -> StageVersion:
    """Check the remote (a missing WebDAV folder is created), then `dvc add` and push. A
    workspace without a cache.type gets one first (an older one: on its next run)."""
    ws_root, chosen = Path(ws_root), get_remote(Path(ws_root), remote)
    progress(0, 3, f"checking remote {chosen.name}")
    check = check_remote(ws_root, chosen.name)
    if not check.ok:  # before `dvc add`: a failed check leaves data and cache untouched
        raise VersioningError(f"remote '{chosen.name}' is not usable: {check.reason}")
    progress(1, 3, f"dvc add {target}")
    ensure_cache_links(ws_root)
    dvc_file = dvc_add(ws_root, target, link=link, changed=changed)
    outs = _outs(dvc_file)
    pushed = dvc_push(ws_root, [_dvc_file(ws_root, target)], remote=chosen.name)
    md5 = str(outs[0].get("md5", "")) if outs else ""
    progress(3, 3, f"{target} versioned as {md5}")
    return StageVersion(dvc_file, md5, pushed)


def models_at_revision(ws_root: Path, rev: str, subpath: str, dest: Path) -> Path:
    """Materialise data/models/<subpath> as committed at git ``rev`` into ``dest``.

    `dvc get <workspace> --rev` reads this workspace's cache first, then its default remote
    (with config.local's credentials). Fetched into a temp folder, then swapped into ``dest``.
    """
    ws_root, dest = Path(ws_root), Path(dest)
    path = "/".join(["data/models", *filter(None, [subpath.strip("/")])])
    if resolve_commit(ws_root, rev) is None:
        raise VersioningError(f"git revision '{rev}' not found in {ws_root} (tried git rev-parse)")
    if not has_file(ws_root, rev, "data/models.dvc"):
        raise VersioningError(f"data/models.dvc is not committed at revision '{rev}' in {ws_root}")
    try:
        name = get_remote(ws_root).name
    except RemoteError:
        name = None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    args = ["get", str(ws_root), path, "--rev", rev, "-o", str(tmp / "out")]
    try:
        run_dvc(ws_root, [*args, *(["--remote", name] if name else [])])
        replace_dir(tmp / "out", dest)
    except VersioningError as exc:
        tried = f"`dvc get --rev` from the cache and remote '{name}'" if name else "the cache"
        why = str(exc).split(": ", 1)[-1]
        raise VersioningError(f"cannot get {path} at {rev!r} (tried {tried}): {why}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@dataclass(frozen=True)
class GcResult:
    cache: int  # objects removed (or, dry, that would be) from the DVC cache
    remotes: dict[str, int]  # the same per remote garbage-collected too
    dry_run: bool


def _removed(output: str, where: str) -> int:
    return sum(int(n) for n in re.findall(rf"Removed (\d+) objects? from {where}", output))


def own_remotes(ws_root: Path) -> list[str]:
    """The remotes kwsops made for this workspace (the local folder in .kwsops/), which no
    other repository can share: only they are garbage-collected."""
    from kwsops.versioning.remote import remotes

    mine = Workspace(Path(ws_root)).local_remote_dir.resolve()
    return [r.name for r in remotes(Path(ws_root)) if r.kind == "local"
            and Path(r.url.removeprefix("file://")).resolve() == mine]  # fmt: skip


def dvc_gc(ws_root: Path, *, dry_run: bool = False) -> GcResult:
    """`dvc gc --workspace --all-commits`: drop the cached objects that neither the workspace
    nor any git commit references (every revision stays restorable), from the cache and from
    the workspace's own local remote. A WebDAV or shared remote is never touched."""
    base = ["gc", "--workspace", "--all-commits", "--force", *(["--dry"] if dry_run else [])]
    cache: int | None = None
    cleaned = {}
    for name in own_remotes(Path(ws_root)) or [None]:
        proc = run_dvc(ws_root, [*base, *(["--cloud", "--remote", name] if name else [])])
        output = f"{proc.stdout}\n{proc.stderr}"
        cache = _removed(output, "repo cache") if cache is None else cache
        if name:
            cleaned[name] = _removed(output, "remote")
    return GcResult(cache or 0, cleaned, dry_run)
