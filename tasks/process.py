"""What a forked Luigi worker does before its task, and how a run is cancelled.

With more than one worker, Luigi forks a process per task. Such a worker (Luigi's
``[worker] task_process_context``, installed by :func:`install`):

- dies with the process that forked it, even one killed by SIGKILL (``PR_SET_PDEATHSIG``: a
  signal from the kernel, where a process group would need a living owner to signal it), so
  no orphan trains on and writes into a run marked killed;
- lets go of its inherited copy of the workspace lock, so the lock is free once the run's
  process is gone;
- turns SIGTERM/SIGINT into :class:`TaskCancelled`, which unwinds the task through every
  ``finally``: the git/dvc runner stops its child with SIGTERM and waits, temp outputs go;
- writes its stdout and stderr to the run's log while the run draws a live display: the
  display's thread may hold rich's locks at the moment of the fork, and a child that wrote
  through rich's stdout proxy (ClearML's ``Task.init`` does) would wait on them forever.

The run's own process uses :class:`CancelHandler`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from types import FrameType

import luigi.configuration
from luigi.worker import fork_lock

from kwsops.procs import die_with_parent
from kwsops.runs.lock import forget_inherited

CONTEXT = "tasks.process.TaskProcessContext"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_stdio_log: str | None = None  # the run log a forked worker writes to (set during a live view)
_inherited: list = []  # stdio objects replaced in a worker, kept so none is ever finalised


class Cancelled(KeyboardInterrupt):
    """Raised in the run's own process by SIGTERM/SIGINT. A KeyboardInterrupt, because that is
    the one exception Luigi lets out of a running task instead of recording it and going on."""


class TaskCancelled(BaseException):
    """Raised in a forked worker by SIGTERM/SIGINT. Not an ``Exception``, so no stage's
    ``except Exception`` swallows it; Luigi records the task as failed, and the worker exits."""


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A second signal while a cancelled task unwinds (its git/dvc child gets time to stop)."""


def cancel_task(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT in a forked worker: a cancel, or the kernel's word that the run's
    process died (``PR_SET_PDEATHSIG``)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _ignore)
    raise TaskCancelled(f"cancelled by {signal.Signals(signum).name}")


def _redirect_stdio(path: str) -> None:
    """fds 1 and 2, and sys.stdout/stderr, to ``path``; the inherited stream objects are never
    touched again (their locks may be held by a thread that does not exist here)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    _inherited.extend([sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__])
    sys.stdout = sys.__stdout__ = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115


class TaskProcessContext:
    """Luigi enters this around every task; only in a forked worker does it do anything."""

    def __init__(self, task_process: object) -> None:
        self.task_process = task_process

    def __enter__(self) -> TaskProcessContext:
        parent = multiprocessing.parent_process()
        if parent is None:  # the task runs in the run's own process (one worker)
            return self
        for sig in STOP_SIGNALS:
            signal.signal(sig, cancel_task)
        if _stdio_log:
            _redirect_stdio(_stdio_log)
        forget_inherited()
        die_with_parent(parent.pid)
        return self

    def __exit__(self, *exc: object) -> bool:
        return False


def install(stdio_log: str | None = None) -> None:
    """Make Luigi run every task inside :class:`TaskProcessContext`; with ``stdio_log``,
    forked workers write their output there (set while a live display draws)."""
    global _stdio_log
    _stdio_log = stdio_log
    config = luigi.configuration.get_config()
    if not config.has_section("worker"):
        config.add_section("worker")
    config.set("worker", "task_process_context", CONTEXT)


class CancelHandler:
    """SIGTERM/SIGINT stop the run once; a second signal while it unwinds is ignored.

    The handler raises :class:`Cancelled` where the main thread is, which unwinds
    ``luigi.build``: a task running in this process goes through its ``finally`` blocks, and
    Luigi's worker terminates its forked workers (each stops its own git/dvc child) and waits
    for them. Only while the main thread forks a worker (Luigi holds ``fork_lock``) would
    unwinding leave Luigi's books half-written: then Luigi is told to take no new task (what
    its own SIGUSR1 handler does) and the signal is delivered again a moment later.
    """

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.requested: str | None = None
        self._pending = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.owner:  # a forked worker before its context took over
            cancel_task(signum, frame)
        if self.requested is not None and not self._pending:
            return
        if self.requested is None:
            self.requested = signal.Signals(signum).name
            stop_taking_work = signal.getsignal(signal.SIGUSR1)
            if callable(stop_taking_work):
                stop_taking_work(signal.SIGUSR1, frame)
        if fork_lock.acquire(blocking=False):
            fork_lock.release()
            self._pending = False
            raise Cancelled(self.requested)
        self._pending = True  # mid-fork (or luigi's keep-alive ping): try again shortly
        main = threading.main_thread().ident
        if main is not None:
            threading.Timer(0.05, signal.pthread_kill, (main, signum)).start()

    def install(self) -> dict:
        """Handle SIGTERM and SIGINT; returns the previous handlers."""
        return {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
