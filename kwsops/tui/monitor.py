"""What the console knows about runs: the active one, its tasks, and the run history.

Everything here reads files the runs write (status.json, params.json, events.jsonl, the lock)
and, optionally, a central scheduler; nothing blocks for long and nothing imports Textual, so
the console's monitor thread calls ``Monitor.poll()`` and hands the immutable ``Snapshot`` to
the UI thread. Event files are read incrementally (``read_events(path, offset)``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kwsops.procs import is_alive
from kwsops.runs.events import read_events
from kwsops.runs.folder import RunPaths, effective_status, list_runs, read_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.runs.state import RunState, TaskState
from kwsops.tui.luigid import LuigidSource, SchedulerTask, scheduler_address
from kwsops.tui.rows import TaskRow, task_rows
from kwsops.workspace import Workspace

HISTORY_LIMIT = 200  # the console reads the newest runs only; `kwsops runs` lists the rest


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str  # effective status: a "running" run whose process died reads "killed"
    origin: str = ""
    started: float | None = None
    duration: float | None = None
    best_accuracy: float | None = None
    params: dict | None = None
    pid: int | None = None
    exit_code: int | None = None
    has_report: bool = False


@dataclass(frozen=True)
class Snapshot:
    focus: RunSummary | None  # the active run, else the newest one
    active: bool
    rows: tuple[TaskRow, ...]
    history: tuple[RunSummary, ...]
    errors: tuple[str, ...] = ()  # problems reading the focus run's events
    scheduler: str = ""  # "" (local scheduler) or "luigid host:port" [+ " unreachable"]


def load_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _accuracies(values: dict, depth: int = 0) -> Iterable[float]:
    for key, value in values.items():
        if isinstance(value, dict) and depth < 2:
            yield from _accuracies(value, depth + 1)
        elif "acc" in str(key).lower() and 0.0 <= (_number(value) or -1.0) <= 1.0:
            yield float(value)


def best_accuracy(status: dict, tasks: Iterable[TaskState]) -> float | None:
    """status.json's ``best_accuracy``, else the best accuracy any finished task reported."""
    if (given := _number(status.get("best_accuracy"))) is not None:
        return given
    found = [
        a
        for t in tasks
        if t.status == "done" and isinstance(t.summary, dict)
        for a in _accuracies(t.summary)
    ]
    return max(found, default=None)


class RunTracker:
    """One run's event log, folded incrementally into a ``RunState``."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.offset = 0
        self.state = RunState(run_id=paths.run_id)
        self.metrics: dict[str, dict] = {}
        self.errors: list[str] = []

    def poll(self) -> None:
        batch = read_events(self.paths.events, self.offset)
        self.offset = batch.offset
        self.errors.extend(batch.errors)
        for event in batch.events:
            try:
                self.state.apply(event)
            except Exception as exc:  # a well-formed line with ill-typed fields
                self.errors.append(f"{self.paths.events}: unusable event {event!r:.80}: {exc}")
                continue
            if event.get("event") == "task_progress" and isinstance(event.get("metrics"), dict):
                self.metrics[str(event.get("task"))] = event["metrics"]


class RunHistory:
    """Summaries of every run folder; a run is re-read only when its files change."""

    def __init__(self, runs_dir: Path, limit: int = HISTORY_LIMIT) -> None:
        self.runs_dir = runs_dir
        self.limit = limit
        self._cache: dict[str, tuple[tuple, RunSummary]] = {}

    @staticmethod
    def _stamp(paths: RunPaths) -> tuple:
        stamp = []
        for path in (paths.status, paths.params, paths.events, paths.report_md):
            try:
                stat = path.stat()
                stamp.append((stat.st_mtime_ns, stat.st_size))
            except OSError:
                stamp.append(None)
        return tuple(stamp)

    def summary(self, paths: RunPaths, tracker: RunTracker | None = None) -> RunSummary:
        status = read_status(paths) or {}  # a dead run's "running" is finalised on disk
        params = load_json(paths.params)
        if tracker is None:
            tracker = RunTracker(paths)
            tracker.poll()
        state = effective_status(status) if status else tracker.state.status
        if not status and state == "running":
            state = "unknown"  # no status.json: a run folder being created, or a broken one
        pid = status.get("pid")
        return RunSummary(
            run_id=paths.run_id,
            status=state,
            origin=str(params.get("origin") or status.get("origin") or ""),
            started=_number(status.get("started")) or tracker.state.started,
            duration=_number(status.get("duration")),
            best_accuracy=best_accuracy(status, tracker.state.tasks.values()),
            params=params,
            pid=pid if isinstance(pid, int) else None,
            exit_code=status.get("exit_code") if isinstance(status.get("exit_code"), int) else None,
            has_report=paths.report_md.exists(),
        )

    def refresh(self, live: dict[str, RunTracker] | None = None) -> list[RunSummary]:
        live = live or {}
        summaries = []
        recent = list_runs(self.runs_dir, limit=self.limit)
        listed = {paths.run_id for paths in recent}
        self._cache = {k: v for k, v in self._cache.items() if k in listed}
        for paths in recent:
            stamp = self._stamp(paths)
            cached = self._cache.get(paths.run_id)
            if paths.run_id in live or cached is None or cached[0] != stamp:
                cached = (stamp, self.summary(paths, live.get(paths.run_id)))
                self._cache[paths.run_id] = cached
            summary = cached[1]
            if (
                summary.status == "running"
                and effective_status({"status": "running", "pid": summary.pid}) != "running"
            ):
                summary = self.summary(paths)  # the process died since we last looked
                self._cache[paths.run_id] = (stamp, summary)
            summaries.append(summary)
        return summaries


def active_run_id(ws: Workspace, history: Iterable[RunSummary]) -> str | None:
    """The lock holder when a live process holds the lock, else the newest live running run."""
    lock = WorkspaceLock(ws.lock_file)
    holder = lock.holder()
    if holder.get("run_id") and is_alive(holder) is not False:
        with contextlib.suppress(OSError):
            if lock.is_held():
                return str(holder["run_id"])
    return next((run.run_id for run in history if run.status == "running"), None)


class Monitor:
    def __init__(
        self,
        ws: Workspace,
        *,
        scheduler_every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ws = ws
        self.history = RunHistory(ws.runs_dir)
        self._tracker: RunTracker | None = None
        address = scheduler_address(ws.luigi_cfg)
        self.scheduler = LuigidSource(*address) if address else None
        self._scheduler_tasks: list[SchedulerTask] = []
        self._scheduler_note = ""
        self._scheduler_every, self._scheduler_next, self._clock = scheduler_every, 0.0, clock

    def _poll_scheduler(self) -> None:
        if self.scheduler is None or self._clock() < self._scheduler_next:
            return
        self._scheduler_next = self._clock() + self._scheduler_every
        try:
            self._scheduler_tasks = self.scheduler.tasks()
            self._scheduler_note = f"luigid {self.scheduler.address}"
        except (OSError, ValueError) as exc:
            self._scheduler_tasks = []
            self._scheduler_note = f"luigid {self.scheduler.address} unreachable ({exc})"

    def _tracker_for(self, run_id: str) -> RunTracker:
        if self._tracker is None or self._tracker.paths.run_id != run_id:
            self._tracker = RunTracker(RunPaths(self.ws.runs_dir / run_id))
            self._tracker.poll()
        return self._tracker

    def poll(self) -> Snapshot:
        self._poll_scheduler()
        live = {self._tracker.paths.run_id: self._tracker} if self._tracker else {}
        for tracker in live.values():
            tracker.poll()
        history = self.history.refresh(live)
        active_id = active_run_id(self.ws, history)
        focus_id = active_id or (history[0].run_id if history else None)
        scheduled = [t for t in self._scheduler_tasks if t.state == "running"]
        if focus_id is None or (active_id is None and scheduled):
            return self._scheduler_snapshot(history)
        tracker = self._tracker_for(focus_id)
        focus = next((r for r in history if r.run_id == focus_id), None)
        if focus is None:  # the active run's folder appeared after the history was read
            focus = self.history.summary(tracker.paths, tracker)
        rows = task_rows(tracker.state, tracker.metrics, focus.status, self._scheduler_tasks)
        return Snapshot(
            focus,
            active_id is not None,
            rows,
            tuple(history),
            tuple(tracker.errors[-5:]),
            self._scheduler_note,
        )

    def _scheduler_snapshot(self, history: list[RunSummary]) -> Snapshot:
        running = [t for t in self._scheduler_tasks if t.state == "running"]
        focus = None
        if running:
            started = [t.started for t in running if t.started]
            focus = RunSummary(
                f"{self._scheduler_note}",
                "running",
                origin="scheduler",
                started=min(started) if started else None,
            )
        rows = task_rows(RunState(), {}, "running" if running else "pending", self._scheduler_tasks)
        return Snapshot(focus, bool(running), rows, tuple(history), (), self._scheduler_note)
