"""Run folders: one per run under reports/runs/<run-id>/, and their status.

Layout of a run folder (the console and the headless user read the same files):

    params.json   what was asked (batch sizes, epochs, ..., origin: cli/tui/luigi/cron)
    status.json   running | ok | failed | cancelled, exit code, timings, best accuracy
    events.jsonl  one JSON object per line, appended as things happen (see EVENT_TYPES)
    run.log       the full text log
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from kwsops.atomic import atomic_write_json


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
