"""Out of disk space: an environment failure, said in one line (which path, how much free
space is needed), never as a configuration error; what the failed stage left is removed."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from pathlib import Path

NO_SPACE = "No space left on device"
DVC_TMP_SUFFIX = ".tmp"  # DVC writes an object as <name>.<random>.tmp, then renames it


def is_out_of_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it, or a tool's message it carries) is ENOSPC."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if NO_SPACE.lower() in str(exc).lower():
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the file system of ``path`` (its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def space_message(path: str | os.PathLike, free_at_start: int | None, what: str = "") -> str:
    """One line: where the disk filled up and how much free space the work needs."""
    doing = f"{what} " if what else ""
    if free_at_start:
        need = f"it needs more than the {mb(free_at_start)} that were free when it started"
    else:
        need = f"{mb(free_bytes(path))} free now"
    return (
        f"no space left on the device of {path}: {doing}stopped ({need}); free space there "
        "(or move the workspace), then run again"
    )


def remove_partial_objects(*folders: str | os.PathLike, older_than: float = 0.0) -> int:
    """Delete DVC's half-written objects (``<md5>.<random>.tmp``) under the cache or a local
    remote's ``files/md5/`` folders: what a push cut off by a full disk leaves. Returns a count."""
    removed, now = 0, time.time()
    for folder in folders:
        base = Path(folder) / "files" / "md5"
        if not base.is_dir():
            continue
        for partial in base.glob(f"*/*{DVC_TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                if now - partial.stat().st_mtime >= older_than:
                    partial.unlink()
                    removed += 1
    return removed
