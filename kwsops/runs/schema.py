"""One schema per run file, used by the writer and every reader: status.json and the lines of
events.jsonl (:mod:`kwsops.runs.folder`, :mod:`kwsops.runs.events`).

A writer's record is checked whole (a wrong type is a bug: ``ValueError`` naming the field).
A reader keeps what it can of a damaged file: a field of the wrong type is dropped and named
in the record's :data:`DAMAGED` list, so every view (``kwsops runs``, ``runs show``, the run
report, the console) shows that field as damaged instead of failing on it. A line that is not
an event at all (no JSON object, no known ``event``) is skipped and reported.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from kwsops.states import RUN_STATES

DAMAGED = "damaged"  # a read record's list of fields that had the wrong type
EVENT_TYPES = (
    "run_started",  # run_id, params, pid, origin
    "task_started",  # task (luigi task id), family, params
    "task_progress",  # task, family, done, total, detail, [metrics]
    "task_done",  # task, family, duration, detail, [summary]
    "task_up_to_date",  # task, family
    "task_failed",  # task, family, duration, error (one line), [exit_code], [cancelled]
    "run_finished",  # status, exit_code, duration, [reason]
)
RunStatus = Literal[RUN_STATES]  # type: ignore[valid-type]


class _Record(BaseModel):
    # strict: a number is never a string, a count never a bool; fields added later are kept
    model_config = ConfigDict(strict=True, extra="allow")


class StatusFile(_Record):
    """status.json (see :mod:`kwsops.runs.folder`)."""

    run_id: str | None = None
    status: RunStatus | None = None
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    duration: float | None = None
    best_accuracy: float | None = None
    best_revision: str | None = None
    reason: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    host: str | None = None
    pidns: int | None = None


class Event(_Record):
    """One line of events.jsonl: the fields each event type may carry (:data:`EVENT_TYPES`)."""

    ts: float | None = None
    event: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    run_id: str | None = None
    params: dict | None = None
    pid: int | None = None
    origin: str | None = None
    host: str | None = None
    task: str | None = None
    family: str | None = None
    done: int | None = None
    total: int | None = None
    detail: str | None = None
    metrics: dict | None = None
    duration: float | None = None
    summary: dict | None = None
    error: str | None = None
    exit_code: int | None = None
    cancelled: bool | None = None
    status: RunStatus | None = None
    reason: str | None = None
    finalised_at: float | None = None


REQUIRED = ("event",)  # an event without a known type means nothing


def _problems(schema: type[_Record], record: dict) -> dict[str, str]:
    try:
        schema.model_validate(record)
    except ValidationError as exc:
        return {str(e["loc"][0]) if e["loc"] else "": e["msg"] for e in exc.errors()}
    return {}


def check(schema: type[_Record], record: dict[str, Any], what: str) -> dict[str, Any]:
    """A record about to be written: ValueError naming each field of the wrong type."""
    problems = _problems(schema, record)
    if problems:
        named = "; ".join(f"{field}: {msg}" for field, msg in problems.items())
        raise ValueError(f"{what}: {named}")
    return record


def salvage(schema: type[_Record], record: dict[str, Any]) -> dict[str, Any]:
    """A record as read: the fields of the wrong type dropped and listed under
    :data:`DAMAGED` (only when there are any). ValueError when a required field is damaged."""
    problems = _problems(schema, record)
    if not problems:
        return record
    if "" in problems or any(field in problems for field in REQUIRED if schema is Event):
        raise ValueError("; ".join(f"{f or 'record'}: {m}" for f, m in problems.items()))
    kept = {key: value for key, value in record.items() if key not in problems}
    kept[DAMAGED] = sorted(problems)
    return kept


def damaged(record: dict[str, Any]) -> list[str]:
    """The fields a read record had of the wrong type."""
    found = record.get(DAMAGED)
    return [str(field) for field in found] if isinstance(found, list) else []


def shown(record: dict[str, Any], field: str, form: str = "{}", missing: str = "?") -> str:
    """A field of a read record as text: ``form`` filled in, ``damaged`` for a field that had
    the wrong type, ``missing`` when absent."""
    if field in damaged(record):
        return DAMAGED
    value = record.get(field)
    return missing if value is None else form.format(value)
