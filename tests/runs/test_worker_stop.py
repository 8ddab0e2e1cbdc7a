"""Luigi's worker stops its forked task processes in bounded time (tasks.workers): one that
will not end on SIGTERM is killed, with whatever it started."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from kwsops.procs import descendants, end_processes
from tasks.luigi_config import RunRequest, luigi_build_args
from tasks.workers import StoppingWorker, stop_task_processes

END_S = 60  # a bound on the waits, far above the grace given


def _stubborn(ready: Path) -> None:
    """A task process that ignores SIGTERM (as one stuck unwinding does), with a child."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    ready.write_text(str(child.pid))
    while True:
        time.sleep(1)


def _obedient(ready: Path) -> None:
    ready.write_text("")
    while True:
        time.sleep(1)


def _start(target, ready: Path) -> multiprocessing.Process:
    process = multiprocessing.get_context("fork").Process(target=target, args=(ready,))
    process.start()
    deadline = time.monotonic() + END_S
    while not ready.exists() or (target is _stubborn and not ready.read_text()):
        assert time.monotonic() < deadline and process.is_alive(), "the process did not start"
        time.sleep(0.05)
    return process


def test_a_task_process_that_ignores_sigterm_is_killed_with_its_child(tmp_path):
    process = _start(_stubborn, tmp_path / "ready")
    child = psutil.Process(int((tmp_path / "ready").read_text()))
    try:
        stop_task_processes([process], grace=1.0)
        assert process.exitcode == -signal.SIGKILL
        psutil.wait_procs([child], timeout=END_S)
        assert not child.is_running(), "what the task process started outlived it"
    finally:
        if process.is_alive():
            end_processes([*descendants(process.pid), psutil.Process(process.pid)], 1.0)
        process.join(END_S)


def test_a_task_process_that_ends_on_sigterm_is_not_killed(tmp_path):
    process = _start(_obedient, tmp_path / "ready")
    stop_task_processes([process], grace=END_S)
    assert process.exitcode == -signal.SIGTERM  # it had its chance to unwind


def test_kwsops_runs_build_with_the_stopping_worker():
    factory = luigi_build_args(RunRequest(batch_sizes=[16]))["worker_scheduler_factory"]
    assert isinstance(factory.create_worker(scheduler=None, worker_processes=2), StoppingWorker)
