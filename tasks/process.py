"""What a forked Luigi worker does before its task, and how a run is cancelled.

With more than one worker, Luigi forks a process per task. Such a worker (Luigi's
``[worker] task_process_context``, installed by :func:`install`):

- dies with the process that forked it, even one killed by SIGKILL (``PR_SET_PDEATHSIG``: a
  signal from the kernel, where a process group would need a living owner to signal it), so
  no orphan trains on and writes into a run marked killed;
- lets go of its inherited copy of the workspace lock, so the lock is free once the run's
  process is gone;
- turns SIGTERM/SIGINT into :class:`TaskCancelled`, which unwinds the task through every
  ``finally``: the git/dvc runner stops its child with SIGTERM and waits, temp outputs go.
  Never inside a finaliser (a ``__del__``, a ``weakref.finalize`` callback): Python would
  print "Exception ignored in ..." and drop the cancel, and the stage would run on. There the
  signal is delivered again a moment later (:func:`in_finaliser`; :func:`_unraisable` is the
  backstop for a finaliser no frame names). When the kernel's signal says the run's process
  died (``kill -9``), the task says so, not "cancelled"; after the task, a stop signal ends the
  worker without a traceback;
- writes its stdout and stderr to the run's log (under `kwsops run`): the terminal gets only
  kwsops's own lines, and a live display's thread may hold rich's locks at the moment of the
  fork, so a child that wrote through rich's stdout proxy (ClearML's ``Task.init`` does)
  would wait on them forever.

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
import psutil
from luigi.worker import fork_lock

from kwsops.procs import die_with_parent
from kwsops.runs.lock import forget_inherited

CONTEXT = "tasks.process.TaskProcessContext"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REDELIVER_S = 0.05  # a signal that landed in a finaliser comes again this much later
PARENT_DIED = "stopped: the run's process died (killed)"
_stdio_log: str | None = None  # the run log a forked worker writes to (set by `kwsops run`)
_inherited: list = []  # stdio objects replaced in a worker, kept so none is ever finalised
_parent_pid: int | None = None  # in a forked worker: the run's process


class Cancelled(KeyboardInterrupt):
    """Raised in the run's own process by SIGTERM/SIGINT. A KeyboardInterrupt, because that is
    the one exception Luigi lets out of a running task instead of recording it and going on."""


class TaskCancelled(BaseException):
    """Raised in a forked worker by SIGTERM/SIGINT. Not an ``Exception``, so no stage's
    ``except Exception`` swallows it; Luigi records the task as failed, and the worker exits."""

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = signum


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A second signal while a cancelled task unwinds (its git/dvc child gets time to stop)."""


def in_finaliser(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside a finaliser, where a raised exception is only printed."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (
            code.co_name == "__call__" and code.co_filename.endswith("weakref.py")
        ):
            return True
        frame = frame.f_back
    return False


def redeliver(signum: int) -> None:
    """Deliver ``signum`` to the main thread again shortly (it landed where it cannot act)."""
    main = threading.main_thread().ident
    if main is not None:
        timer = threading.Timer(REDELIVER_S, signal.pthread_kill, (main, signum))
        timer.daemon = True
        timer.start()


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """A cancel raised where Python could not raise it (a finaliser no frame named): delivered
    again, and nothing printed. Anything else goes to the hook that was there before."""
    exc = unraisable.exc_value
    if not isinstance(exc, TaskCancelled | Cancelled):
        _previous_unraisable(unraisable)
        return
    if isinstance(exc, TaskCancelled):
        signum = exc.signum
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, cancel_task)
    else:
        signum = signal.Signals.__members__.get(str(exc), signal.SIGTERM)
        handler = signal.getsignal(signum)
        if isinstance(handler, CancelHandler):
            handler._pending = True  # the cancel is requested and not yet raised
    redeliver(signum)


_previous_unraisable = sys.unraisablehook


def _watch_finalisers() -> None:
    """Send cancels that a finaliser swallowed to :func:`_unraisable` (once per process)."""
    global _previous_unraisable
    if sys.unraisablehook is not _unraisable:
        _previous_unraisable = sys.unraisablehook
        sys.unraisablehook = _unraisable


def cancel_task(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT in a forked worker: a cancel, or the kernel's word that the run's
    process died (``PR_SET_PDEATHSIG``)."""
    if in_finaliser(frame):
        redeliver(signum)
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, _ignore)
    _watch_finalisers()  # should a finaliser no frame names swallow it after all
    if _parent_died():
        raise TaskCancelled(PARENT_DIED, signum=signum)
    raise TaskCancelled(f"cancelled by {signal.Signals(signum).name}", signum=signum)


def _parent_died() -> bool:
    """Whether the run's process is gone or dying. We are reparented when it dies; but when
    its forking thread exits while another of its threads still runs (a SIGKILL takes the
    threads down one by one), the kernel first hands us to that sibling thread, so the
    parent's pid is still the same: then the process is a zombie, its leader having exited."""
    if _parent_pid is None:
        return False
    if os.getppid() != _parent_pid:
        return True
    try:
        state = psutil.Process(_parent_pid).status()
    except psutil.Error:
        return True
    return state in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _quiet_exit(signum: int, frame: FrameType | None) -> None:
    """A stop signal once the task is over: the worker ends, with no traceback."""
    os._exit(128 + signum)


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
        global _parent_pid
        parent = multiprocessing.parent_process()
        if parent is None:  # the task runs in the run's own process (one worker)
            return self
        _parent_pid = parent.pid
        _watch_finalisers()
        for sig in STOP_SIGNALS:
            signal.signal(sig, cancel_task)
        if _stdio_log:
            _redirect_stdio(_stdio_log)
        forget_inherited()
        die_with_parent(parent.pid)
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        if multiprocessing.parent_process() is None:
            return False
        for sig in STOP_SIGNALS:  # the task is over: a late stop ends the worker quietly
            signal.signal(sig, _quiet_exit)
        # a cancel that landed outside Luigi's own try (its first log line, its result's
        # put): the worker stops here, and multiprocessing prints no traceback for it
        return isinstance(value, TaskCancelled)


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
            return cancel_task(signum, frame)
        if in_finaliser(frame):  # raised there, the cancel would only be printed
            redeliver(signum)
            return
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
        _watch_finalisers()
        return {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
