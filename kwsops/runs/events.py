"""A run's structured event log: reports/runs/<run-id>/events.jsonl, appended by every worker.

The run folder is passed down in ``KWSOPS_RUN_DIR``, so forked workers and workers started by
a central scheduler write to the same file (:func:`emit`). Without it (a bare ``luigi.build``
in a script) events go nowhere.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kwsops.runs.schema import DAMAGED, EVENT_TYPES, Event, check, salvage

RUN_DIR_ENV = "KWSOPS_RUN_DIR"


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
        text = json.dumps(record, default=str, ensure_ascii=False)
        check(Event, json.loads(text), f"{self.path}: {event} event")  # as a reader will see it
        line = (text + "\n").encode("utf-8")
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

    A line that is not an event (:class:`kwsops.runs.schema.Event`) is reported in ``errors``
    (with its byte offset) and skipped; a field of the wrong type is dropped from its event,
    named in the event's ``damaged`` list and reported too.
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
                record = salvage(Event, record)
                if record.get(DAMAGED):
                    errors.append(f"{path}: damaged event at byte {position}: "
                                  f"{', '.join(record[DAMAGED])} of the wrong type")  # fmt: skip
                events.append(record)
            except ValueError as exc:
                errors.append(f"{path}: bad event at byte {position}: {exc}")
        position += len(raw)
    return EventBatch(events, offset + end, errors)


def current_log() -> EventLog | None:
    """The event log of the run this process works for, if any."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    return EventLog(Path(run_dir) / "events.jsonl") if run_dir else None


def emit(event: str, **fields: Any) -> None:
    """Append an event to the current run's log (nothing outside a run)."""
    log = current_log()
    if log is not None:
        log.emit(event, **fields)
