"""Fold a run's event log into per-task state: shared by the CLI, the run report and the TUI."""

from __future__ import annotations

from dataclasses import dataclass, field

from kwsops.stages import STAGE_ORDER


@dataclass
class TaskState:
    task: str
    family: str
    status: str = "pending"  # pending | running | done | failed | up to date
    started: float | None = None
    finished: float | None = None
    duration: float | None = None
    done: int = 0
    total: int = 0
    detail: str = ""
    error: str = ""
    exit_code: int | None = None  # a failure's own run exit code (the quality gate's 5, ...)
    params: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    @property
    def order(self) -> tuple[int, str]:
        return (STAGE_ORDER.get(self.family, len(STAGE_ORDER)), self.task)


@dataclass
class RunState:
    run_id: str = ""
    started: float | None = None
    finished: float | None = None
    status: str = "running"
    exit_code: int | None = None
    params: dict = field(default_factory=dict)
    tasks: dict[str, TaskState] = field(default_factory=dict)

    def _task(self, event: dict) -> TaskState:
        task_id = event.get("task", "?")
        state = self.tasks.get(task_id)
        if state is None:
            state = self.tasks[task_id] = TaskState(task_id, event.get("family", "?"))
        return state

    def apply(self, event: dict) -> None:
        kind = event.get("event")
        ts = event.get("ts")
        if kind == "run_started":
            self.run_id = event.get("run_id", self.run_id)
            self.started = ts
            self.params = event.get("params", {})
        elif kind == "run_finished":
            self.finished = ts
            self.status = event.get("status", self.status)
            self.exit_code = event.get("exit_code")
        elif kind == "task_up_to_date":
            state = self._task(event)
            if state.status == "pending":
                state.status = "up to date"
        elif kind == "task_started":
            state = self._task(event)
            state.status, state.started = "running", ts
            state.params = event.get("params", {})
            state.error = ""
        elif kind == "task_progress":
            state = self._task(event)
            state.done, state.total = event.get("done", 0), event.get("total", 0)
            state.detail = event.get("detail", state.detail)
        elif kind in ("task_done", "task_failed"):
            state = self._task(event)
            state.status = "done" if kind == "task_done" else "failed"
            state.finished, state.duration = ts, event.get("duration")
            state.detail = event.get("detail") or state.detail
            state.error = event.get("error", "")
            state.exit_code = event.get("exit_code")
            state.summary = event.get("summary", {})
            if kind == "task_done" and state.total:
                state.done = state.total

    def apply_all(self, events: list[dict]) -> RunState:
        for event in events:
            self.apply(event)
        return self

    def ordered(self) -> list[TaskState]:
        return sorted(self.tasks.values(), key=lambda t: t.order)

    def failed(self) -> list[TaskState]:
        return [t for t in self.ordered() if t.status == "failed"]
