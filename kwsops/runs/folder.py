"""Run folders: one per run under reports/runs/<run-id>/, and their status.

Layout of a run folder (the console and the headless user read the same files):

    params.json   what was asked (batch sizes, epochs, ..., origin: cli/tui/luigi/cron)
    status.json   running | ok | failed | cancelled | killed, exit code, timings, best accuracy,
                  and the run's process (pid, start time, host: :func:`kwsops.procs.identity`)
    events.jsonl  one JSON object per line, appended as things happen (see EVENT_TYPES)
    run.log       the full text log

A run whose process is gone (kill -9, a crash, a power cut) still says ``running`` until
someone looks: the next reader (:func:`read_status`) finds the process dead by pid *and* start
time, and marks the run ``killed`` on disk, once.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kwsops.atomic import atomic_write_json
from kwsops.procs import identity, is_alive
from kwsops.runs.events import EventLog, read_events
from kwsops.runs.lock import WorkspaceLock
from kwsops.runs.schema import DAMAGED, StatusFile, check, damaged, salvage

KILLED_REASON = "killed: the run's process ended without recording an outcome (kill -9, a crash)"
RUN_ID = re.compile(r"^\d{8}-\d{6}-")  # new_run_id(): the start second, then a random tag


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


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
    write_status(paths, status="running", started=time.time(), **identity())
    return paths


def write_status(paths: RunPaths, **fields: Any) -> dict:
    current = _load_status(paths) or {"run_id": paths.run_id}
    current.pop(DAMAGED, None)  # a damaged field read is dropped: what is written is whole
    current.update(fields)
    atomic_write_json(paths.status, check(StatusFile, current, str(paths.status)))
    return current


def _load_status(paths: RunPaths) -> dict | None:
    """status.json as :class:`StatusFile` allows: a field of the wrong type is dropped and
    named under ``damaged``; None when there is no JSON object at all."""
    try:
        status = json.loads(paths.status.read_text())
        return salvage(StatusFile, status) if isinstance(status, dict) else None
    except (OSError, ValueError):
        return None


def process_alive(status: dict) -> bool | None:
    """Whether the process of a ``running`` status still runs (None: this machine cannot tell)."""
    started = status.get("started")
    return is_alive(status, started_before=started if isinstance(started, int | float) else None)


def effective_status(status: dict | None) -> str:
    """``running`` whose process is gone (by pid and start time) means the run was killed."""
    if not status:
        return "unknown"
    if "status" in damaged(status):
        return DAMAGED
    state = status.get("status", "unknown")
    if state == "running" and process_alive(status) is False:
        return "killed"
    return state


def _alive(paths: RunPaths, status: dict) -> bool:
    alive = process_alive(status)
    parents = paths.root.absolute().parents  # <ws>/reports/runs/<id>
    if alive is None and len(parents) > 2:  # another host or pid namespace: ask the lock
        lock = WorkspaceLock(parents[2] / ".kwsops" / "run.lock")
        with contextlib.suppress(OSError):
            return lock.is_held() and lock.holder().get("run_id") == paths.run_id
    return alive is not False


def read_status(paths: RunPaths) -> dict | None:
    """status.json; a ``running`` run whose process is gone is first finalised as killed."""
    status = _load_status(paths)
    if status and status.get("status") == "running" and not _alive(paths, status):
        with contextlib.suppress(OSError):
            return finalise_killed(paths)
    return status


@contextlib.contextmanager
def _folder_locked(paths: RunPaths) -> Iterator[None]:
    fd = os.open(paths.root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def finalise_killed(paths: RunPaths) -> dict | None:
    """Write down that a run's process is gone: a ``run_finished`` event and status.json say
    ``killed`` (its tasks still running then read as killed too). Two readers at once
    finalise it once."""
    with _folder_locked(paths):
        status = _load_status(paths)
        if not status or status.get("status") != "running" or _alive(paths, status):
            return status
        events = read_events(paths.events).events
        last = max((e["ts"] for e in events if isinstance(e.get("ts"), int | float)), default=None)
        finished = last or status.get("started") or paths.root.stat().st_mtime
        duration = round(finished - (status.get("started") or finished), 3)
        EventLog(paths.events).emit(
            "run_finished", status="killed", duration=duration, finalised_at=time.time(),
            reason=KILLED_REASON,
        )  # fmt: skip
        return write_status(
            paths, status="killed", finished=finished, duration=duration, reason=KILLED_REASON
        )


def _second(run: Path) -> str:
    """The start second in a run id; "" for a folder named otherwise (listed last)."""
    return run.name[:15] if RUN_ID.match(run.name) else ""


def list_runs(runs_dir: str | os.PathLike, limit: int | None = None) -> list[RunPaths]:
    """Run folders, newest first: by the start second in their ids, then by start time.

    With ``limit``, only the newest runs' status files are read (a workspace may hold
    thousands of runs; the console lists a few twice a second)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    folders = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=_second, reverse=True)

    def started(run: Path) -> tuple[float, str]:
        status = _load_status(RunPaths(run)) or {}
        value = status.get("started")
        stamp = float(value) if isinstance(value, int | float) else run.stat().st_mtime
        return (stamp, run.name)

    runs: list[RunPaths] = []
    for _, same_second in itertools.groupby(folders, key=_second):
        runs += [RunPaths(p) for p in sorted(same_second, key=started, reverse=True)]
        if limit is not None and len(runs) >= limit:
            break
    return runs[:limit] if limit is not None else runs
