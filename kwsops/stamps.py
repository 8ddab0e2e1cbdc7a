"""Content keys and stamps: a target is complete only when its stamp matches its inputs.

Every stage has a key: a digest of its parameters and of its upstream key (the first stage
hashes the raw files). The stage writes the key into a stamp file inside its output as the
last step before the atomic rename, so "stamp present and key equal" means "done, for exactly
these inputs". Changing a raw file or a parameter changes the keys downstream of it only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kwsops.atomic import atomic_write_json
from kwsops.entries import walk

STAMP_NAME = ".kwsops-stamp.json"
_CHUNK = 1 << 20


def digest(obj: Any) -> str:
    """A stable sha256 of a JSON-able object (keys sorted, floats as repr)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def tree_digest(root: str | os.PathLike, cache_file: str | os.PathLike | None = None) -> str:
    """Digest of every file under ``root`` (relative path + content).

    ``cache_file`` remembers each file's hash by (size, mtime): a no-op rerun reads no audio,
    while any real edit (new size or mtime) is hashed again, so only content decides the key.
    Only regular files (and symlinks to them) are opened; any other entry (a FIFO, a socket, a
    dangling link: :mod:`kwsops.entries`) counts by its name and why it is not read.
    """
    cache: dict[str, list] = {}
    if cache_file is not None and Path(cache_file).is_file():
        try:
            cache = json.loads(Path(cache_file).read_text())
        except (OSError, ValueError):
            cache = {}
    entries: list[tuple[str, str]] = []
    fresh: dict[str, list] = {}
    for entry in walk(root):
        if not entry.readable:
            entries.append((entry.rel, f"not read: {entry.reason}"))
            continue
        known = cache.get(entry.rel)
        if known and known[0] == entry.size and known[1] == entry.mtime_ns:
            sha = known[2]
        else:
            sha = file_sha256(Path(root) / entry.rel)
        fresh[entry.rel] = [entry.size, entry.mtime_ns, sha]
        entries.append((entry.rel, sha))
    if cache_file is not None and fresh != cache:
        atomic_write_json(cache_file, fresh)
    return digest(entries)


def stamp_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / STAMP_NAME


def read_stamp_file(path: str | os.PathLike) -> dict | None:
    """A stamp's fields; None when it is missing, unreadable or not a JSON object."""
    try:
        stamp = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def read_stamp(folder: str | os.PathLike) -> dict | None:
    return read_stamp_file(stamp_path(folder))


def stamp_file_matches(path: str | os.PathLike, key: str) -> bool:
    """Whether the stamp file carries ``key``: the check behind every stage's completeness."""
    stamp = read_stamp_file(path)
    return stamp is not None and stamp.get("key") == key


def stamp_matches(folder: str | os.PathLike, key: str) -> bool:
    return stamp_file_matches(stamp_path(folder), key)


def write_stamp(folder: str | os.PathLike, key: str, **info: Any) -> Path:
    """Write the stamp last, inside the (still temporary) output folder."""
    return atomic_write_json(stamp_path(folder), {"key": key, **info})


def file_stamp(path: str | os.PathLike) -> tuple[int, int]:
    """``(mtime_ns, size)`` of a file, ``(0, -1)`` when it cannot be read: one stat, the cheap
    check whether a file changed before reading it again."""
    try:
        stat = os.stat(path)
    except OSError:
        return (0, -1)
    return (stat.st_mtime_ns, stat.st_size)
