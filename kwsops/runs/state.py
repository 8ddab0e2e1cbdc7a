"""Fold a run's event log into per-task state: shared by the CLI, the run report and the TUI."""

from __future__ import annotations

from dataclasses import dataclass, field

from kwsops.stages import STAGE_ORDER


@dataclass
class TaskState:
    task: str
    family: str
    status: str = "pending"  # pending | running | done | failed | cancelled | up to date
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
    curve: list[dict] = field(default_factory=list)  # per-epoch metrics (training tasks)

    @property
    def label(self) -> str:
        """The task as people name it: ``TrainFold batch 16 fold 0``, ``Validate``."""
        params = self.params if isinstance(self.params, dict) else {}
        named = (("batch_size", "batch"), ("fold", "fold"))
        return " ".join([self.family, *(f"{name} {params[key]}" for key, name in named
                                         if key in params)])  # fmt: skip

    def curves(self) -> list[tuple[str, list[dict]]]:
        """(label, epochs) per fold: one curve for a TrainFold, one per fold for a Train that
        trains its folds together (its epochs carry a ``fold``)."""
        folds: dict[object, list[dict]] = {}
        for metrics in self.curve:
            folds.setdefault(metrics.get("fold"), []).append(metrics)
        return [
            (self.label if fold is None else f"{self.label} fold {fold}", rows)
            for fold, rows in folds.items()
        ]

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
    problems: list[str] = field(default_factory=list)  # damaged lines of the event log

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
            if "total" in event:  # an epoch's metrics come without a count
                state.done, state.total = event.get("done", 0), event.get("total", 0)
            state.detail = event.get("detail", state.detail)
            metrics = event.get("metrics")
            if isinstance(metrics, dict) and isinstance(metrics.get("epoch"), int):
                at = (metrics.get("fold"), metrics["epoch"])  # an epoch repeated: the last counts
                state.curve = [m for m in state.curve if (m.get("fold"), m.get("epoch")) != at]
                state.curve.append(metrics)
        elif kind in ("task_done", "task_failed"):
            state = self._task(event)
            failed = "cancelled" if event.get("cancelled") else "failed"
            state.status = "done" if kind == "task_done" else failed
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

    def failure_reason(self) -> str:
        """The first failed task and its error, one line; '' when none failed."""
        failed = self.failed()
        return f"{failed[0].label}: {failed[0].error}" if failed else ""
