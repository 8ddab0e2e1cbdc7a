"""What is on disk is what was versioned: the DVC cache's objects checked against their names.

With DVC's hard-link cache a workspace file and its cache object are one inode, so a write into
the file changes the object too, and DVC, which trusts an object's name, would link the next
file with that name to the damaged bytes. Three guards, cheapest first:

- a snapshot (size, mtime of every file) taken when a stage is versioned: a file changed since
  is seen with one stat each run (:func:`snapshot`);
- before `dvc add` relinks a file to an object already in the cache, the object is hashed, and
  one whose bytes do not hash to its name is rewritten from the file (:func:`repair_objects`);
  an object that a changed file shares its inode with is dropped (:func:`drop_changed_objects`);
- `kwsops verify` hashes every versioned file and object (:mod:`kwsops.versioning.verify`).

A stage output deleted from the workspace comes back from the cache (:func:`restore`) when every
object it needs is there and hashes to its name, and the cached stamp is the one expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kwsops.atomic import atomic_dir
from kwsops.stamps import STAMP_NAME
from kwsops.versioning.dvc_config import cache_dir, read_config
from kwsops.versioning.errors import VersioningError

log = logging.getLogger("kwsops")
_CHUNK = 1 << 20
FIX = "run `kwsops verify --repair` (or `kwsops pull` to fetch the versioned data again)"


class CorruptionError(VersioningError):
    """A versioned file or cache object does not hold the bytes its name says, and the run
    cannot mend it; the message names the file and the fix."""


def file_md5(path: str | os.PathLike) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            md5.update(chunk)
    return md5.hexdigest()


def object_path(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def walk_files(folder: Path) -> Iterator[os.DirEntry]:
    """Every entry under ``folder`` but real folders, which it enters (never a folder link):
    one readdir per folder, d_type says what each is without a stat."""
    pending = [Path(folder)] if Path(folder).is_dir() else []  # a file target: nothing
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                else:
                    yield entry


def snapshot(folder: str | os.PathLike, prefix: str = "") -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of every regular file under ``folder`` (paths
    relative to it, ``prefix`` in front): one stat each, what the cheap check compares."""
    found: dict[str, list[int]] = {}
    for entry in walk_files(Path(folder)):
        try:
            if not entry.is_file():
                continue
            stat = entry.stat()
        except OSError:
            continue
        rel = Path(entry.path).relative_to(folder).as_posix()
        found[prefix + rel] = [stat.st_size, stat.st_mtime_ns]
    return found


def _outs(dvc_file: Path) -> list[dict[str, Any]]:
    from ruamel.yaml import YAML

    return list((YAML(typ="safe").load(dvc_file.read_text()) or {}).get("outs") or [])


def pointer(dvc_file: Path) -> str:
    """The object a .dvc file names ('' when it names none or cannot be read)."""
    try:
        outs = _outs(dvc_file)
    except (OSError, ValueError):
        return ""
    return str(outs[0].get("md5") or "") if outs else ""


@dataclass(frozen=True)
class Tracked:
    path: Path  # the workspace file
    md5: str  # the name of its object


def tracked_files(ws_root: Path, dvc_file: Path) -> list[Tracked]:
    """Every file a .dvc file versions, with its object's name; CorruptionError when the
    folder's listing (a .dir object) is missing from the cache or unreadable."""
    cache, out_files = cache_dir(ws_root), []
    for out in _outs(dvc_file):
        md5, where = str(out.get("md5") or ""), dvc_file.parent / str(out.get("path") or "")
        if not md5.endswith(".dir"):
            out_files.append(Tracked(where, md5))
            continue
        listing = object_path(cache, md5)
        try:
            entries = json.loads(listing.read_text())
        except (OSError, ValueError):
            rel = dvc_file.relative_to(ws_root)
            raise CorruptionError(
                f"{rel} names {md5}, which is not in the DVC cache (or unreadable): {FIX}"
            ) from None
        out_files += [Tracked(where / e["relpath"], str(e["md5"])) for e in entries]
    return out_files


def listing(cache: Path, md5: str) -> dict[str, str] | None:
    """``{relative path: md5}`` of a folder's .dir object; None when not cached or unreadable."""
    if not md5.endswith(".dir"):
        return None
    try:
        return {
            e["relpath"]: str(e["md5"]) for e in json.loads(object_path(cache, md5).read_text())
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def object_intact(cache: Path, md5: str) -> bool:
    try:
        return file_md5(object_path(cache, md5)) == md5
    except OSError:
        return False


def replace_object(cache: Path, md5: str, good: Path) -> None:
    """Write the object ``md5`` anew from ``good`` (a copy; read-only like DVC's)."""
    target = object_path(cache, md5)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(good, tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def repair_objects(ws_root: Path, dvc_file: Path) -> list[str]:
    """Before DVC relinks the files `dvc add` left unlinked (their content was in the cache
    already): every such object must hash to its name, or it is written anew from the file,
    whose hash DVC has just computed. Returns the workspace paths whose objects were mended."""
    cache, mended = cache_dir(ws_root), []
    for item in tracked_files(ws_root, dvc_file):
        try:
            stat = item.path.stat()
        except OSError:
            continue
        if stat.st_nlink != 1 or not object_path(cache, item.md5).is_file():
            continue
        if not object_intact(cache, item.md5):
            replace_object(cache, item.md5, item.path)
            mended.append(item.path.relative_to(ws_root).as_posix())
            log.warning("DVC cache object %s of %s did not hash to its name: written anew "
                        "from the file", item.md5, mended[-1])  # fmt: skip
    return mended


def drop_changed_objects(ws_root: Path, dvc_file: Path, changed: set[str]) -> list[str]:
    """Files changed in place since they were versioned (``changed``: workspace-relative
    paths) that are still the inode of their old object took that object with them: drop
    such an object from the cache (the remote keeps the versioned bytes), so no later link
    reaches it. Returns the paths whose objects were dropped."""
    if not changed or not dvc_file.is_file():
        return []
    cache, dropped = cache_dir(ws_root), []
    try:
        items = tracked_files(ws_root, dvc_file)
    except CorruptionError:
        return []
    for item in items:
        rel = item.path.relative_to(ws_root).as_posix()
        obj = object_path(cache, item.md5)
        if rel not in changed or not obj.is_file():
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(obj, item.path) and not object_intact(cache, item.md5):
                obj.unlink()
                dropped.append(rel)
                log.warning("%s was changed in place and was the DVC cache's copy of its "
                            "versioned bytes (md5 %s): dropped from the cache; the remote "
                            "keeps them", rel, item.md5)  # fmt: skip
    return dropped


def link_kind(ws_root: Path) -> str:
    """The first link type the cache tries (hardlink, reflink, symlink, copy)."""
    return next(iter(read_config(ws_root)["cache"].get("type") or []), "copy")


def restore(ws_root: Path, dvc_file: Path, prefix: str, dest: Path, key: str) -> int | None:
    """Bring back the versioned files under ``prefix`` of ``dvc_file``'s folder into ``dest``
    from the DVC cache, when the cached stamp carries ``key`` and every object is there and
    hashes to its name; None (nothing touched) otherwise. Built in a temp folder, renamed."""
    ws_root, dest = Path(ws_root), Path(dest)
    md5 = pointer(dvc_file) if dvc_file.is_file() else ""
    cache = cache_dir(ws_root)
    if not md5.endswith(".dir"):
        return None
    try:
        entries = json.loads(object_path(cache, md5).read_text())
    except (OSError, ValueError):
        return None
    wanted = {e["relpath"][len(prefix):]: str(e["md5"]) for e in entries
              if e["relpath"].startswith(prefix)}  # fmt: skip
    stamp = wanted.get(STAMP_NAME)
    try:
        cached = json.loads(object_path(cache, stamp).read_text()) if stamp else None
    except (OSError, ValueError):
        cached = None
    if not isinstance(cached, dict) or cached.get("key") != key:
        return None
    damaged = [rel for rel, oid in wanted.items() if not object_intact(cache, oid)]
    if damaged:
        log.warning("%s not restored from the DVC cache: the object of %s is missing or "
                    "damaged; computed again", dest.name, damaged[0])  # fmt: skip
        return None
    link = link_kind(ws_root).startswith("hardlink")
    with atomic_dir(dest) as tmp:  # a killed restore leaves a temp folder a sweep removes
        for rel, oid in wanted.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if not link:
                    raise OSError
                os.link(object_path(cache, oid), target)
            except OSError:
                shutil.copy2(object_path(cache, oid), target)
    return len(wanted)


def missing_objects(ws_root: Path, dvc_files: list[Path]) -> list[str]:
    """'<file>: <md5>' for every object the .dvc files need that the cache lacks."""
    cache, missing = cache_dir(ws_root), []
    for dvc_file in dvc_files:
        rel = dvc_file.relative_to(ws_root).as_posix()
        try:
            items = tracked_files(ws_root, dvc_file)
        except CorruptionError:
            missing.append(f"{rel}: {pointer(dvc_file)}")
            continue
        except (OSError, ValueError):
            missing.append(f"{rel}: unreadable")
            continue
        missing += [f"{rel}: {i.md5}" for i in items if not object_path(cache, i.md5).is_file()]
    return missing
