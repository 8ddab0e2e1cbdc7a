"""What is under a data folder, decided without opening anything: the files kwsops may read,
and every other entry with the reason it is not read.

Only regular files are read. A symlink to a regular file is read as that file (DVC does the
same: it versions the content the link points to). Everything else would hang a reader or
abort it: a FIFO blocks ``open`` forever, a link to ``/dev/zero`` never ends, a socket or a
dangling link raises. Those are *special* entries: listed (the manifest gives their reason),
hashed by name only (adding or removing one still changes the input key), and kept away from
DVC (:mod:`kwsops.versioning.ignore`). A symlink to a folder is not followed (neither does
DVC), so no link can make a walk loop or leave the data folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READABLE = ("file", "link")
_KINDS = (
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "device"),
    (stat.S_ISBLK, "device"),
)


@dataclass(frozen=True)
class Entry:
    rel: str  # posix path relative to the walked folder
    kind: str  # "file", "link" (to a regular file), "folder link" or "special"
    reason: str = ""  # why a non-readable entry is not read (a manifest reason)
    size: int = 0  # bytes of the file (or of the file a link points to)
    mtime_ns: int = 0

    @property
    def readable(self) -> bool:
        return self.kind in READABLE


def _what(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a file or folder")


def classify(path: Path, rel: str) -> Entry:
    """One entry, from ``lstat`` and ``stat`` only (never ``open``)."""
    try:
        own = path.lstat()
    except OSError as exc:
        return Entry(rel, "special", f"unreadable: {exc.strerror or exc}")
    if stat.S_ISREG(own.st_mode):
        if not os.access(path, os.R_OK):
            return Entry(rel, "special", "unreadable: permission denied")
        return Entry(rel, "file", size=own.st_size, mtime_ns=own.st_mtime_ns)
    if not stat.S_ISLNK(own.st_mode):
        return Entry(rel, "special", f"not a regular file: {_what(own.st_mode)}")
    try:
        target = path.stat()
    except FileNotFoundError:
        return Entry(rel, "special", "not a regular file: dangling symlink")
    except OSError as exc:  # ELOOP, EACCES on the way
        return Entry(rel, "special", f"not a regular file: broken symlink ({exc.strerror})")
    if stat.S_ISDIR(target.st_mode):
        return Entry(rel, "folder link", "not a regular file: symlink to a folder (not followed)")
    if not stat.S_ISREG(target.st_mode):
        return Entry(rel, "special", f"not a regular file: symlink to a {_what(target.st_mode)}")
    if not os.access(path, os.R_OK):
        return Entry(rel, "special", "unreadable: permission denied")
    return Entry(
        rel, "link", size=target.st_size, mtime_ns=max(own.st_mtime_ns, target.st_mtime_ns)
    )


def walk(root: str | os.PathLike) -> Iterator[Entry]:
    """Every entry under ``root`` but folders, dot-entries included (DVC versions them; the
    manifest lists them as skipped), in a stable order (sorted within each folder); symlinked
    folders are entries, not followed; a folder that cannot be listed is a special entry."""
    root = Path(root)
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        yield from _unlistable(root, errors)
        here = Path(dirpath)
        dirnames[:] = sorted(dirnames)
        names = filenames
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in sorted([*names, *links]):
            path = here / name
            yield classify(path, path.relative_to(root).as_posix())
    yield from _unlistable(root, errors)


def _unlistable(root: Path, errors: list[OSError]) -> Iterator[Entry]:
    while errors:
        error = errors.pop(0)
        rel = Path(error.filename or root).relative_to(root).as_posix()
        if rel != ".":
            yield Entry(rel, "special", f"unreadable: folder ({error.strerror or error})")
