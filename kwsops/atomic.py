"""Atomic outputs: a killed run never leaves a file or folder that looks complete.

Files are written beside their destination and renamed into place; folders are built in a
hidden temp folder next to the target and swapped in with two renames. A crash between the two
renames leaves the target missing, which reads as "not done", never as "done".

Temp names carry their writer (:func:`kwsops.procs.owner_tag`): ``.fold_0.tmp-<owner>-<rand>``.
A sweep (:func:`remove_leftovers`) removes only what a dead process left, never the temp folder
a sibling worker is writing; one written on another machine is left to that machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from kwsops.procs import owner_alive, owner_tag

TMP_MARK = ".tmp-"
OLD_MARK = ".old-"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_prefix(name: str, mark: str) -> str:
    return f".{name}{mark}{owner_tag()}-"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file open on a temp name beside ``path``; written in pieces as long as
    the block runs, it is renamed to ``path`` only when the block ends without an error (a
    killed or failed writer leaves a temp name that a sweep removes, never ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name, TMP_MARK), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_file(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def replace_dir(src: Path, final: Path) -> None:
    """Move the finished folder ``src`` to ``final``, replacing what was there."""
    old = None
    if final.exists():
        old = final.with_name(_temp_prefix(final.name, OLD_MARK) + uuid.uuid4().hex[:8])
        os.rename(final, old)
    os.rename(src, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder; on success it replaces ``final``, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final.name, TMP_MARK), dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)


def leftover_owner(name: str) -> str | None:
    """The owner tag of a temp or old entry's name; None when ``name`` is not one."""
    if not name.startswith("."):
        return None
    for mark in (TMP_MARK, OLD_MARK):
        if mark in name:
            return name.rsplit(mark, 1)[1].split("-", 1)[0]
    return None


def remove_leftovers(parent: str | os.PathLike) -> list[Path]:
    """Delete the temp and old folders/files that dead processes left in ``parent`` (a killed
    run's); return what went. What a live process owns, here or on another machine, stays."""
    parent = Path(parent)
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        owner = leftover_owner(entry.name)
        if owner is not None and owner_alive(owner) is False:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
