"""One active run per workspace: an ``flock`` on .kwsops/run.lock, whatever started the run.

``WorkspaceLock`` holds the lock for the life of the process, so a lock whose process died
(even by kill -9) is released by the kernel and never blocks the next run. A forked Luigi
worker inherits the descriptor, and with it the lock: it lets go of its copy at once
(:func:`forget_inherited`), so the lock lives exactly as long as the run's own process.
The holder record names that process by pid *and* start time (:func:`kwsops.procs.identity`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from kwsops.procs import identity

PROBE_RETRIES = 4
_held: list[WorkspaceLock] = []  # the locks this process (or the parent it forked from) holds


class AlreadyRunning(RuntimeError):
    def __init__(self, holder: dict) -> None:
        self.holder = holder
        run = holder.get("run_id", "?")
        super().__init__(
            f"another kwsops run is active in this workspace: run {run} "
            f"(pid {holder.get('pid', '?')}, started {holder.get('started_at', '?')}); "
            "wait for it to finish or cancel it"
        )


class WorkspaceLock:
    """One active run per workspace, whatever started it."""

    def __init__(self, lock_file: str | os.PathLike) -> None:
        self.path = Path(lock_file)
        self._fd: int | None = None
        self._pid = 0  # the process that took the lock

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self, run_id: str, **info: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(PROBE_RETRIES + 1):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # is_held() probes take the lock for microseconds: only a lock still held
                # after a few tries belongs to a run
                if attempt == PROBE_RETRIES:
                    os.close(fd)
                    raise AlreadyRunning(self.holder()) from None
                time.sleep(0.05)
        record = {
            "run_id": run_id,
            **identity(),
            "started_at": datetime.now().isoformat(timespec="seconds"),
            **info,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd, self._pid = fd, os.getpid()
        _held.append(self)

    def release(self) -> None:
        if self._fd is not None:
            if self._pid == os.getpid():  # a forked copy leaves the holder record alone
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        if self in _held:
            _held.remove(self)

    def is_held(self) -> bool:
        """True when some live process holds the lock (probe without taking it for long)."""
        if self._fd is not None:
            return True
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @contextlib.contextmanager
    def held(self, run_id: str, **info: Any) -> Iterator[WorkspaceLock]:
        self.acquire(run_id, **info)
        try:
            yield self
        finally:
            self.release()


def forget_inherited() -> None:
    """In a forked child: close the lock descriptors the parent holds (without touching the
    lock file), so the lock is released when the parent dies even if the child lives on."""
    for lock in list(_held):
        if lock._pid != os.getpid():
            lock.release()
