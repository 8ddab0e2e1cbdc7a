"""A Preprocess stopped in a forked worker (as Luigi runs it) ends, and its pool with it."""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

from kwsops.audio.preprocess import preprocess
from kwsops.procs import descendants, end_processes
from tests.helpers.layouts import one_label

END_S = 60  # a bound on the wait, far above what ending takes (about a second)


class Cancel(BaseException):
    """What a stop signal raises in a forked task process (tasks.process.TaskCancelled)."""


def _raise_cancel(signum: int, frame: object) -> None:
    raise Cancel(signal.Signals(signum).name)


def _cancelled_as_the_pool_shuts_down(input_dir: Path, output_dir: Path, pids: Path) -> None:
    """In the forked process: the stop lands just as the pool's shutdown starts (where luigid
    going left it: the stage failed on its progress call, then Luigi sent SIGTERM)."""
    signal.signal(signal.SIGTERM, _raise_cancel)
    real_shutdown = ProcessPoolExecutor.shutdown

    def shutdown(self: ProcessPoolExecutor, *args: object, **kwargs: object) -> None:
        pids.write_text(json.dumps(list(self._processes or {})))
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)  # raises here
        real_shutdown(self, *args, **kwargs)

    ProcessPoolExecutor.shutdown = shutdown
    preprocess(input_dir, output_dir, workers=2)


def test_a_stop_landing_in_the_pool_shutdown_ends_the_process_and_its_workers(tmp_path):
    one_label(tmp_path / "input", clips=8)
    pids = tmp_path / "pool.json"
    args = (tmp_path / "input", tmp_path / "output", pids)
    worker = multiprocessing.get_context("fork").Process(
        target=_cancelled_as_the_pool_shuts_down, args=args
    )
    worker.start()
    try:
        worker.join(END_S)
        assert worker.exitcode is not None, "the stopped stage hung with its pool workers"
        assert worker.exitcode != 0  # the stop ended it, as a failure
        pool = [psutil.Process(pid) for pid in json.loads(pids.read_text()) if _running(pid)]
        psutil.wait_procs(pool, timeout=END_S)
        assert not [proc for proc in pool if proc.is_running()], "a decoder outlived its stage"
    finally:
        if worker.is_alive():
            end_processes([*descendants(worker.pid), psutil.Process(worker.pid)], 1.0)
        worker.join(END_S)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
