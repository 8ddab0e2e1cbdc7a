"""Runs: one folder per run under reports/runs/<run-id>/, a structured event log, a lock.

Layout of a run folder (the console and the headless user read the same files):

    params.json   what was asked (batch sizes, epochs, ..., origin: cli/tui/luigi/cron)
    status.json   running | ok | failed | cancelled, exit code, timings, best accuracy
    events.jsonl  one JSON object per line, appended as things happen (see EVENT_TYPES)
    run.log       the full text log

Only one run may be active per workspace: ``WorkspaceLock`` holds an ``flock`` on
``.kwsops/run.lock`` for the life of the process, so a lock whose process died (even by
kill -9) is released by the kernel and never blocks the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from kwsops.atomic import atomic_write_json

EVENT_TYPES = (
    "run_started",  # run_id, params, pid, origin
    "task_started",  # task (luigi task id), family, params
    "task_progress",  # task, family, done, total, detail, [metrics]
    "task_done",  # task, family, duration, detail, [summary]
    "task_up_to_date",  # task, family
    "task_failed",  # task, family, duration, error (one line)
    "run_finished",  # status, exit_code, duration
)
PROBE_RETRIES = 4
RUN_STATUSES = ("running", "ok", "failed", "cancelled", "killed")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class EventLog:
    """Append-only JSON-lines file; each event is one ``write`` on an O_APPEND descriptor, so
    events from forked Luigi workers interleave whole lines, never torn ones."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: str, **fields: Any) -> dict:
        if event not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event!r}; expected one of {EVENT_TYPES}")
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return record


@dataclass
class EventBatch:
    events: list[dict]
    offset: int
    errors: list[str] = field(default_factory=list)


def read_events(path: str | os.PathLike, offset: int = 0) -> EventBatch:
    """Read complete lines from ``offset``; a half-written last line waits for the next call.

    A line that is not valid JSON is reported in ``errors`` (with its byte offset) and skipped.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return EventBatch([], offset)
    end = data.rfind(b"\n") + 1
    events: list[dict] = []
    errors: list[str] = []
    position = offset
    for raw in data[:end].splitlines(keepends=True):
        text = raw.strip()
        if text:
            try:
                record = json.loads(text)
                if not isinstance(record, dict) or "event" not in record:
                    raise ValueError("not an event object")
                events.append(record)
            except ValueError as exc:
                errors.append(f"{path}: bad event at byte {position}: {exc}")
        position += len(raw)
    return EventBatch(events, offset + end, errors)


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def params(self) -> Path:
        return self.root / "params.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"


def create_run(
    runs_dir: str | os.PathLike, params: dict, origin: str, run_id: str | None = None
) -> RunPaths:
    run_id = run_id or new_run_id()
    paths = RunPaths(Path(runs_dir) / run_id)
    paths.root.mkdir(parents=True, exist_ok=False)
    atomic_write_json(paths.params, {"run_id": run_id, "origin": origin, **params})
    write_status(paths, status="running", started=time.time(), pid=os.getpid())
    return paths


def write_status(paths: RunPaths, **fields: Any) -> dict:
    current = read_status(paths) or {"run_id": paths.run_id}
    current.update(fields)
    atomic_write_json(paths.status, current)
    return current


def read_status(paths: RunPaths) -> dict | None:
    try:
        return json.loads(paths.status.read_text())
    except (OSError, ValueError):
        return None


def effective_status(status: dict | None) -> str:
    """``running`` whose process is gone means the run was killed."""
    if not status:
        return "unknown"
    state = status.get("status", "unknown")
    if state == "running":
        pid = status.get("pid")
        if not pid or not psutil.pid_exists(int(pid)):
            return "killed"
    return state


def list_runs(runs_dir: str | os.PathLike) -> list[RunPaths]:
    """Run folders, newest first: by start time (ids have one-second resolution), then id."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [RunPaths(p) for p in runs_dir.iterdir() if p.is_dir()]

    def started(run: RunPaths) -> tuple[float, str]:
        status = read_status(run) or {}
        return (float(status.get("started") or run.root.stat().st_mtime), run.run_id)

    return sorted(runs, key=started, reverse=True)


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
            "pid": os.getpid(),
            "started_at": datetime.now().isoformat(timespec="seconds"),
            **info,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

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
