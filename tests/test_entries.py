"""Walking a data folder that holds what a hostile or unlucky user leaves there: nothing but
regular files is opened, so a FIFO or a link to /dev/zero cannot hang the input digest."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from kwsops.entries import walk
from kwsops.stamps import tree_digest


def hostile_tree(root: Path) -> dict[str, str]:
    """Every kind of entry, and the kind walk() must give it."""
    (root / "rock").mkdir(parents=True)
    (root / "rock" / "a.wav").write_bytes(b"RIFF")
    (root / "outside.wav").write_bytes(b"RIFF2")
    os.symlink(root / "outside.wav", root / "rock" / "link.wav")
    os.mkfifo(root / "rock" / "fifo.wav")
    os.symlink("/dev/zero", root / "rock" / "zero.wav")
    os.symlink(root / "missing.wav", root / "rock" / "dangling.wav")
    os.symlink(root / "rock", root / "loop")  # a folder link: never followed
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "rock" / "sock.wav"))
    sock.close()
    return {
        "outside.wav": "file",
        "loop": "folder link",
        "rock/a.wav": "file",
        "rock/dangling.wav": "special",
        "rock/fifo.wav": "special",
        "rock/link.wav": "link",
        "rock/sock.wav": "special",
        "rock/zero.wav": "special",
    }


def bounded(fn, *args, timeout: float = 30.0):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn.__name__} blocked on an entry it must not open"
    return result[0]


def test_walk_names_every_entry_and_opens_none(tmp_path: Path):
    expected = hostile_tree(tmp_path)
    entries = {e.rel: e for e in bounded(lambda: list(walk(tmp_path)))}
    assert {rel: e.kind for rel, e in entries.items()} == expected
    assert entries["rock/fifo.wav"].reason == "not a regular file: named pipe (FIFO)"
    assert entries["rock/zero.wav"].reason == "not a regular file: symlink to a device"
    assert entries["rock/dangling.wav"].reason == "not a regular file: dangling symlink"
    assert entries["rock/link.wav"].size == len(b"RIFF2")  # read as the file it points to


def test_the_input_digest_finishes_and_sees_special_entries_come_and_go(tmp_path: Path):
    hostile_tree(tmp_path)
    cache = tmp_path.parent / "hashes.json"
    first = bounded(tree_digest, tmp_path, cache)
    assert bounded(tree_digest, tmp_path, cache) == first
    (tmp_path / "rock" / "fifo.wav").unlink()
    assert bounded(tree_digest, tmp_path, cache) != first, "a manifest row went: a new key"
    os.mkfifo(tmp_path / "rock" / "fifo.wav")
    assert bounded(tree_digest, tmp_path, cache) == first
    (tmp_path / "outside.wav").write_bytes(b"RIFF3")  # the linked recording changed
    assert bounded(tree_digest, tmp_path, cache) != first


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_special(tmp_path: Path):
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    (tmp_path / "x.wav").chmod(0)
    assert [(e.kind, e.reason) for e in walk(tmp_path)] == [
        ("special", "unreadable: permission denied")
    ]
