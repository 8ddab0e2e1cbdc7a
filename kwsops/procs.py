"""Which process is which: liveness by pid *and* start time, and children that die with us.

A pid alone names a process only while it lives: after it exits the kernel hands the number to
the next process, and a container's run is pid 1 in its own namespace, a number every host has.
So kwsops records a process as ``{"pid", "pid_started", "host", "pidns"}`` (:func:`identity`)
and :func:`is_alive` answers from all of them: a live pid whose start time differs is another
process. A record from another machine or pid namespace cannot be checked by pid at all
(``None``): the caller decides by the workspace lock instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

import psutil

START_TOLERANCE_S = 0.5  # create_time is computed from clock ticks since boot: stable to 10 ms
PR_SET_PDEATHSIG = 1


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def identity(pid: int | None = None) -> dict[str, Any]:
    """What names this process (or ``pid``) for as long as it lives, anywhere it is read."""
    proc = psutil.Process(pid or os.getpid())
    return {
        "pid": proc.pid,
        "pid_started": round(proc.create_time(), 3),
        "host": socket.gethostname(),
        "pidns": _pid_namespace(),
    }


def is_alive(record: Mapping[str, Any], *, started_before: float | None = None) -> bool | None:
    """Whether the process ``record`` names still runs: True, False, or None when this machine
    cannot tell (the record comes from another host or pid namespace).

    A record without ``pid_started`` (written by an older kwsops) is alive only if its pid runs
    a process created before ``started_before`` (e.g. the run's own start time)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    host, pidns = record.get("host"), record.get("pidns")
    if (host and host != socket.gethostname()) or (pidns and pidns != _pid_namespace()):
        return None
    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # another user's process: it exists, and its start time still counts
        return True
    started = record.get("pid_started")
    if isinstance(started, int | float):
        return abs(created - float(started)) <= START_TOLERANCE_S
    if started_before is not None:
        return created <= started_before + START_TOLERANCE_S
    return True


def _machine() -> str:
    """A short tag of this host and pid namespace: where a pid means something."""
    return hashlib.sha256(f"{socket.gethostname()}:{_pid_namespace()}".encode()).hexdigest()[:8]


_tags: dict[int, str] = {}


def owner_tag() -> str:
    """This process as a file-name-safe tag (``<pid>.<start in 1/100 s>.<machine>``), for
    temp files whose owner a later sweep must find alive or dead (:func:`owner_alive`)."""
    pid = os.getpid()
    if pid not in _tags:
        started = round(psutil.Process(pid).create_time() * 100)
        _tags[pid] = f"{pid}.{started}.{_machine()}"
    return _tags[pid]


def owner_alive(tag: str) -> bool | None:
    """Whether the process that wrote :func:`owner_tag` ``tag`` runs; None when it ran on
    another machine (nobody here can tell). Not a tag at all (an older kwsops wrote it): False."""
    parts = tag.split(".")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return False
    if parts[2] != _machine():
        return None
    return is_alive({"pid": int(parts[0]), "pid_started": int(parts[1]) / 100})


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``; the "parent" is the thread that forked us). If the parent is
    already gone, the signal is raised now. A no-op where prctl does not exist."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


# `python -P -c` prologue for a tool run as a child that must not outlive its parent (a dvc push
# left orphaned would hold DVC's repo lock); argv[1] is the parent's pid. Inline, so the tool's
# process imports nothing of kwsops.
PDEATHSIG_PROLOGUE = (
    "import ctypes, os, signal, sys\n"
    "parent = int(sys.argv.pop(1))\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != parent:\n"
    "    sys.exit(143)\n"
)


def end_processes(procs: list[psutil.Process], grace: float) -> None:
    """SIGTERM each of ``procs`` still running, SIGKILL those not gone within ``grace`` s, and
    wait for them (psutil names a process by pid and start time: a reused pid is left alone)."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """Every process below ``pid`` (this process by default); none once it is gone."""
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return []
