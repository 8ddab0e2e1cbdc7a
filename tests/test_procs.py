"""Which process is which (pid *and* start time), children that die with their parent, and
temp outputs that a sweep removes only when their writer is dead. Real processes throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from kwsops.atomic import remove_leftovers
from kwsops.procs import identity, is_alive, owner_alive, owner_tag


def wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_live_pid_with_another_start_time_is_another_process():
    me = identity()
    assert is_alive(me) is True
    assert is_alive({**me, "pid_started": me["pid_started"] - 3600}) is False  # pid reused
    # a run that was pid 1 in a container: pid 1 runs here too, but it is not that process
    assert is_alive({"pid": 1, "pid_started": time.time() - 60, "host": me["host"]}) is False
    assert is_alive({**me, "host": "another-machine"}) is None  # cannot tell from here
    assert is_alive({"pid": 0}) is False and is_alive({"pid": "12"}) is False
    # a record of an older kwsops (no start time): alive only if it predates the run
    assert is_alive({"pid": os.getpid()}, started_before=me["pid_started"] + 5) is True
    assert is_alive({"pid": os.getpid()}, started_before=me["pid_started"] - 3600) is False


def test_a_finished_process_is_dead_even_before_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = identity(child.pid)
    assert wait_gone(child.pid)
    assert is_alive(record) is False  # a zombie is no longer the process
    child.wait()
    assert is_alive(record) is False


DIES_WITH_PARENT = """
import os, sys, time
from kwsops.procs import die_with_parent
parent = os.getpid()
child = os.fork()
if child == 0:
    die_with_parent(parent)
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


def test_a_child_dies_when_its_parent_is_killed_with_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", DIES_WITH_PARENT], stdout=subprocess.PIPE)
    child = int(parent.stdout.readline())
    assert psutil.Process(child).is_running()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_gone(child), "the child outlived its parent"


HOLD_TEMP = """
import sys, time
from kwsops.atomic import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    (tmp / "model.bin").write_bytes(b"half written")
    print(tmp, flush=True)
    time.sleep(60)
"""


def test_a_sweep_spares_the_temp_folder_of_a_live_sibling(tmp_path: Path):
    final = tmp_path / "batch_16" / "fold_1"
    sibling = subprocess.Popen(
        [sys.executable, "-c", HOLD_TEMP, str(final)], stdout=subprocess.PIPE, text=True
    )
    try:
        tmp = Path(sibling.stdout.readline().strip())
        legacy = final.parent / ".fold_0.tmp-abc123"  # left by an older kwsops: no owner
        legacy.mkdir()
        assert remove_leftovers(final.parent) == [legacy]
        assert (tmp / "model.bin").read_bytes() == b"half written"
    finally:
        sibling.kill()
        sibling.wait()
    assert remove_leftovers(final.parent) == [tmp]  # its writer is dead now
    assert list(final.parent.iterdir()) == []


def test_owner_tags_name_this_process_on_this_machine():
    tag = owner_tag()
    assert owner_alive(tag) is True
    pid, started, machine = tag.split(".")
    assert owner_alive(f"{pid}.{int(started) - 1000}.{machine}") is False
    assert owner_alive(f"{pid}.{started}.0000beef") is None  # another machine's: left alone
    assert owner_alive("abc123") is False
