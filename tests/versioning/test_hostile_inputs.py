"""Real `dvc add` on a data folder holding what DVC cannot read (a FIFO, a socket, links to a
device or to nothing, names full of gitignore syntax), and a dvc child that must not outlive
the process that started it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from kwsops.versioning.dvc import version_stage
from kwsops.versioning.ignore import BEGIN, END
from kwsops.versioning.runner import run_dvc

SPECIAL = ["rock/fifo.wav", "rock/we[ir]d *#!.wav", "rock/trail .wav ", "rock/new\nline.wav",
           "rock/zero.wav", "rock/dangling.wav", "gun/sock.wav"]  # fmt: skip


def hostile_input(input_dir: Path) -> None:
    for label in ("rock", "gun"):
        (input_dir / label).mkdir(parents=True, exist_ok=True)
        (input_dir / label / f"spk1__{label}.wav").write_bytes(os.urandom(600))
    (input_dir / "rock" / "spk1__rock.wav.link").symlink_to(input_dir / "gun" / "spk1__gun.wav")
    for name in SPECIAL[:4]:
        os.mkfifo(input_dir / name)
    (input_dir / "rock" / "zero.wav").symlink_to("/dev/zero")
    (input_dir / "rock" / "dangling.wav").symlink_to(input_dir / "nowhere.wav")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(input_dir / "gun" / "sock.wav"))


def kinds(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.lstat().st_mode for p in sorted(root.rglob("*"))}


def bounded(fn, timeout: float = 180.0):
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "dvc hung on an entry it cannot read"
    return result[0]


def test_dvc_add_versions_what_it_can_read_and_skips_the_rest(workspace):
    ws = workspace
    hostile_input(ws.input_dir)
    (ws.root / ".dvcignore").write_text("# mine\n*.tmp\n")
    before = kinds(ws.input_dir)
    version = bounded(lambda: version_stage(ws.root, "data/input"))
    assert kinds(ws.input_dir) == before, "the raw folder must not change"
    listing = json.loads(
        (ws.root / ".dvc/cache/files/md5" / version.md5[:2] / version.md5[2:]).read_text()
    )
    assert sorted(e["relpath"] for e in listing) == [
        "gun/spk1__gun.wav",
        "rock/spk1__rock.wav",
        "rock/spk1__rock.wav.link",  # a link to a regular file: its content, as DVC does
    ]
    lines = (ws.root / ".dvcignore").read_text().splitlines()
    assert lines[:2] == ["# mine", "*.tmp"], "the user's own lines stay first"
    block = lines[lines.index(BEGIN) + 1 : lines.index(END)]
    assert len(block) == len(SPECIAL) and all(p.startswith("/data/input/") for p in block)
    status = run_dvc(ws.root, ["status", "--json", "data/input.dvc"])
    assert json.loads(status.stdout or "{}") == {}
    bounded(lambda: version_stage(ws.root, "data/input"))  # again: same block, no change
    assert (ws.root / ".dvcignore").read_text().splitlines() == lines


DVC_ON_A_FIFO = """
import sys
from kwsops.versioning.runner import run_dvc
run_dvc(sys.argv[1], ["add", "--no-relink", "data/input"])
"""


def dvc_children(ws_root: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "dvc.cli" in cmd and proc.info["cwd"] == str(ws_root):
            found.append(proc)
    return found


def test_a_dvc_child_dies_with_the_process_that_started_it(workspace):
    """run_dvc straight on a FIFO (no .dvcignore): dvc blocks reading it, holding DVC's repo
    lock; the process that started it is killed with SIGKILL, and dvc goes with it."""
    ws = workspace
    (ws.input_dir / "rock").mkdir(parents=True)
    os.mkfifo(ws.input_dir / "rock" / "fifo.wav")
    starter = subprocess.Popen([sys.executable, "-c", DVC_ON_A_FIFO, str(ws.root)])
    deadline = time.monotonic() + 60
    while not dvc_children(ws.root):
        assert time.monotonic() < deadline, "dvc never started"
        time.sleep(0.05)
    time.sleep(1.0)  # dvc is blocked in open() of the FIFO by now
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    deadline = time.monotonic() + 30
    while any(p.status() != psutil.STATUS_ZOMBIE for p in dvc_children(ws.root)):
        assert time.monotonic() < deadline, "dvc outlived the process that started it"
        time.sleep(0.1)
    (ws.input_dir / "rock" / "fifo.wav").unlink()
    status = run_dvc(ws.root, ["status", "--json"], check=False)  # DVC's lock is free again
    assert status.returncode == 0, status.stderr
