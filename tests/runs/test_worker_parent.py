"""A forked worker tells the run's process dying (kill -9) from a cancel, also in the case
where the kernel first hands it to a sibling thread of the dying process (same pid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# the process that stands for the run: a second thread keeps it alive while its main thread
# (the one that forked the worker) ends by the raw exit syscall, as in a SIGKILL where the
# threads go down one by one
RUN = r"""
import ctypes, os, platform, sys, threading, time
import tasks.process as worker
threading.Thread(target=time.sleep, args=(120,), daemon=True).start()
ready, said = os.pipe()
if os.fork() == 0:
    worker._parent_pid = parent = os.getppid()
    alive = worker._parent_died()
    os.write(said, b"1")  # the run's main thread may end now
    deadline = time.monotonic() + 30
    while not worker._parent_died() and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(sys.argv[1], "w") as out:
        out.write(f"{alive} {os.getppid() == parent} {worker._parent_died()}")
    os._exit(0)
os.read(ready, 1)
ctypes.CDLL(None).syscall({"x86_64": 60, "aarch64": 93}[platform.machine()], 0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux threads and /proc")
def test_worker_sees_the_run_dying_while_another_of_its_threads_lives(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    run = subprocess.Popen([sys.executable, "-c", RUN, str(out)])
    try:
        deadline = time.monotonic() + 60
        while not out.exists() or not out.read_text():
            assert time.monotonic() < deadline, "the worker never answered"
            time.sleep(0.05)
        alive_at_start, same_parent_pid, died = out.read_text().split()
        assert alive_at_start == "False", "a living run is not dead"
        assert same_parent_pid == "True", "handed to the dying process's other thread"
        assert died == "True", "a run whose main thread is gone is dying, not cancelling"
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
