"""What the console knows about runs: the active one, its tasks, and the run history.

Everything here reads files the runs write (status.json, params.json, events.jsonl, the lock)
and, optionally, a central scheduler; nothing blocks for long and nothing imports Textual, so
the console's monitor thread calls ``Monitor.poll()`` and hands the immutable ``Snapshot`` to
the UI thread. Event files are read incrementally (``read_events(path, offset)``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kwsops.procs import is_alive
from kwsops.runs.events import read_events
from kwsops.runs.folder import RunPaths, list_runs, read_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.runs.show import RunSummary, summarise
from kwsops.runs.state import RunState
from kwsops.tui.readers.luigid import LuigidSource, SchedulerTask, scheduler_address
from kwsops.tui.readers.rows import TaskRow, task_rows
from kwsops.workspace import Workspace

HISTORY_LIMIT = 200  # the console reads the newest runs only; `kwsops runs` lists the rest


@dataclass(frozen=True)
class Snapshot:
    focus: RunSummary | None  # the active run, else the newest one
    active: bool
    rows: tuple[TaskRow, ...]
    history: tuple[RunSummary, ...]
    errors: tuple[str, ...] = ()  # problems reading the focus run's events
    scheduler: str = ""  # "" (local scheduler) or "luigid host:port" [+ " unreachable"]
    curves: tuple[tuple[str, tuple[dict, ...]], ...] = ()  # the focus run's folds, by epoch


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
        if tracker is None:
            tracker = RunTracker(paths)
            tracker.poll()
        return summarise(paths, tracker.state)

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
                and (read_status(paths) or {}).get("status") != "running"
            ):
                summary = self.summary(paths)  # the process died since we last looked (finalised)
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
        curves = tuple(
            (label, tuple(epochs)) for t in tracker.state.ordered() for label, epochs in t.curves()
        )
        return Snapshot(
            focus,
            active_id is not None,
            rows,
            tuple(history),
            tuple(tracker.errors[-5:]),
            self._scheduler_note,
            curves,
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
