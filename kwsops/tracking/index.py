"""The workspace's own record of its ClearML tasks: ``<ws>/.kwsops/clearml/index.jsonl``.

Offline session and artifact paths are stored relative to ``.kwsops/clearml``, so a copy of
the workspace (``cp -a``) reads its own sessions, never the original's.

One JSON object per line, a full snapshot of a task each time it changes (at start, then at
close); the last line of a task wins. Each line is one ``write`` on an O_APPEND descriptor, so
forked Luigi workers never tear each other's lines. With it, ``list_tasks``, ``fetch_artifacts``
and ``last:N`` work offline, without a server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kwsops.atomic import atomic_write_bytes, atomic_write_json
from kwsops.procs import is_alive
from kwsops.secrets import MASK, known_secrets, scrub
from kwsops.text import error_line
from kwsops.tracking.setup import (
    PROJECT,
    TrackingError,
    clearml_dir,
    clearml_env,
    server_reachable,
    server_url,
    tracking_mode,
)

log = logging.getLogger("kwsops.tracking")


@dataclass
class TaskRecord:
    task_id: str
    name: str
    type: str
    created: str  # ISO 8601, local time with microseconds: sorts in creation order
    mode: str  # offline | online
    params: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str = "running"  # our outcome: running | completed | failed | aborted
    error: str | None = None
    session: str | None = None  # offline session folder (its .zip sits beside it)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> local path or URL
    values: dict[str, float] = field(default_factory=dict)  # single values
    web_url: str | None = None
    pid: int = 0
    pid_started: float | None = None  # with pid, names the stage's process (kwsops.procs)
    tracking_seconds: float = 0.0  # time ClearML added to the stage (init + close)
    imported_id: str | None = None  # server task id once `kwsops clearml import` ran

    @property
    def outcome(self) -> str:
        return self.status

    @property
    def id(self) -> str:
        return self.task_id


def still_running(record: TaskRecord) -> bool:
    """A task whose stage has not closed it and whose process still runs (by pid and start
    time: a reused pid is not the stage's)."""
    if record.status != "running":
        return False
    created = None
    with contextlib.suppress(ValueError):
        created = datetime.fromisoformat(record.created).timestamp()
    who = {"pid": record.pid, "pid_started": record.pid_started}
    return is_alive(who, started_before=created) is not False


def index_path(ws_root: Path) -> Path:
    return clearml_dir(ws_root) / "index.jsonl"


def imported_path(ws_root: Path) -> Path:
    return clearml_dir(ws_root) / "imported.json"


def _paths(data: dict, convert) -> dict:
    """``data`` with its session and artifact paths passed through ``convert``."""
    data = dict(data)
    if data.get("session"):
        data["session"] = convert(data["session"])
    data["artifacts"] = {k: convert(v) for k, v in dict(data.get("artifacts") or {}).items()}
    return data


def _relative(base: Path, location: str) -> str:
    """A path inside .kwsops/clearml as relative to it: a copied workspace reads its own."""
    path = Path(location)
    return (
        path.relative_to(base).as_posix()
        if path.is_absolute() and path.is_relative_to(base)
        else location
    )


def _absolute(base: Path, location: str) -> str:
    return location if "://" in location or Path(location).is_absolute() else str(base / location)


def append_record(ws_root: Path, record: TaskRecord) -> None:
    path = index_path(ws_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = clearml_dir(ws_root).resolve()
    portable = _paths(asdict(record), lambda location: _relative(base, location))
    line = json.dumps(portable, default=str, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_imported(ws_root: Path) -> dict[str, str]:
    path = imported_path(ws_root)
    return json.loads(path.read_text()) if path.is_file() else {}


def write_imported(ws_root: Path, imported: dict[str, str]) -> None:
    atomic_write_json(imported_path(ws_root), imported)


def read_index(ws_root: Path) -> list[TaskRecord]:
    """Every task of the workspace in creation order (a torn or foreign line is skipped)."""
    path = index_path(ws_root)
    latest: dict[str, TaskRecord] = {}
    known = set(TaskRecord.__dataclass_fields__)
    base = clearml_dir(ws_root).resolve()
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            data = _paths(json.loads(line), lambda location: _absolute(base, location))
            record = TaskRecord(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError):
            continue
        latest[record.task_id] = record
    imported = read_imported(ws_root)
    for record in latest.values():
        record.imported_id = imported.get(record.task_id)
    return sorted(latest.values(), key=lambda r: r.created)


def require_server() -> None:
    """Fail fast (a TCP connect) instead of ClearML's minutes of retries (inside clearml_env)."""
    if not server_reachable(server_url()):
        raise TrackingError(f"ClearML server {server_url()} is unreachable; try again later")


def _name_matches(task_name: str, name: str | None) -> bool:
    return name is None or task_name == name or task_name.startswith(f"{name} ")


def _online_records(ws_root: Path, name: str | None) -> list[TaskRecord]:
    from clearml import Task

    with clearml_env(ws_root):
        require_server()
        Task.set_offline(False)
        pattern = f"^{re.escape(name)}" if name else None
        tasks = Task.get_tasks(project_name=PROJECT, task_name=pattern)
    return [
        TaskRecord(
            task_id=task.id,
            name=task.name,
            type=str(task.task_type),
            created=task.data.created.astimezone().replace(tzinfo=None).isoformat(),
            mode="online",
            params=task.get_parameters_as_dict().get("General", {}),
            tags=list(task.get_tags() or []),
            status=str(task.get_status()),
            artifacts={key: art.url for key, art in task.artifacts.items()},
        )
        for task in tasks
    ]


def list_tasks(
    ws_root: Path, name: str | None = "train model", limit: int | None = None
) -> list[TaskRecord]:
    """Tasks named ``name`` (or ``name`` + " ..."), newest first: the workspace's index, plus
    the server's tasks of project KWS when online (a server error is a warning, not a failure)."""
    records = [r for r in read_index(ws_root) if _name_matches(r.name, name)]
    if tracking_mode(ws_root) == "online":
        seen = {r.task_id for r in records} | {r.imported_id for r in records if r.imported_id}
        try:
            records += [r for r in _online_records(ws_root, name) if r.task_id not in seen]
        except Exception as exc:  # the server is optional here: show what we know
            log.warning("ClearML server tasks unavailable: %s", error_line(exc))
    records.sort(key=lambda r: r.created, reverse=True)
    return records[:limit] if limit is not None else records


def _session_file(record: TaskRecord, name: str, path: Path) -> bytes:
    """An artifact's bytes from the session folder, else from the session's zip."""
    if path.is_file():
        return path.read_bytes()
    session = Path(record.session or "")
    archive = session.with_name(session.name + ".zip")
    if archive.is_file() and path.is_relative_to(session):
        with zipfile.ZipFile(archive) as zf, contextlib.suppress(KeyError):
            return zf.read(path.relative_to(session).as_posix())
    raise TrackingError(
        f"ClearML task {record.task_id}: artifact {name!r} is missing from its offline "
        f"session ({path}); the session was removed or moved"
    )


def _target(dest: Path, task_id: str, name: str, filename: str) -> Path:
    """dest/<name>/<filename>, refusing names that would step outside ``dest`` (a server's
    artifact names are not trusted)."""
    for part in (name, filename):
        if part in ("", ".", "..") or Path(part).name != part:
            raise TrackingError(f"ClearML task {task_id}: refusing artifact path {part!r}")
    return dest / name / filename


def fetch_artifacts(ws_root: Path, task_id: str, dest: Path) -> dict[str, Path]:
    """Copy every artifact of ``task_id`` to ``dest/<artifact name>/<file name>``."""
    dest = Path(dest)
    record = next((r for r in read_index(ws_root) if task_id in (r.task_id, r.imported_id)), None)
    moved = record is not None and record.imported_id and not Path(record.session or "").exists()
    if record is not None and moved:
        task_id = record.imported_id  # `kwsops gc` removed the session: the server has it
    elif record is not None and record.mode == "offline" and record.task_id == task_id:
        if not record.artifacts:
            raise TrackingError(f"ClearML task {task_id} ({record.name}) has no artifacts")
        fetched = {}
        for name, location in record.artifacts.items():
            source = Path(location)
            target = _target(dest, task_id, name, source.name)
            atomic_write_bytes(target, _session_file(record, name, source))
            fetched[name] = target
        return fetched
    if tracking_mode(ws_root) != "online":
        if record is not None and moved:
            raise TrackingError(
                f"ClearML task {record.task_id}: its offline session was removed after its "
                f"import as {task_id}; configure the ClearML server to fetch it from there"
            )
        raise TrackingError(
            f"unknown ClearML task {task_id}: not in {index_path(ws_root)} "
            "and no ClearML server is configured"
        )
    return _fetch_online(ws_root, task_id, dest)


def _fetch_online(ws_root: Path, task_id: str, dest: Path) -> dict[str, Path]:
    from clearml import Task

    with clearml_env(ws_root):
        require_server()
        Task.set_offline(False)
        try:
            task = Task.get_task(task_id=task_id)
        except Exception as exc:
            raise TrackingError(f"ClearML task {task_id} not found on the server: {exc}") from exc
        if not task.artifacts:
            raise TrackingError(f"ClearML task {task_id} ({task.name}) has no artifacts")
        fetched = {}
        for name, artifact in task.artifacts.items():
            local = artifact.get_local_copy(extract_archive=False)
            if not local:
                raise TrackingError(f"ClearML task {task_id}: artifact {name!r} did not download")
            target = _target(dest, task_id, name, Path(local).name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, target)
            fetched[name] = target
    return fetched


def scrub_session(session: Path) -> bool:
    """Mask known secrets in ClearML's own session files (console log, task, metrics) and
    rebuild the session zip if anything changed. Returns whether something was masked."""
    secrets = [(s, json.dumps(s)[1:-1]) for s in known_secrets()]
    changed = False
    for path in session.glob("*.json*"):
        text = path.read_text(errors="replace")
        clean = scrub(text)
        for raw, escaped in secrets:
            clean = clean.replace(escaped, MASK).replace(raw, MASK)
        if clean != text:
            atomic_write_bytes(path, clean.encode("utf-8"))
            changed = True
    archive = session.with_name(session.name + ".zip")
    if changed and archive.is_file():
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for path in sorted(session.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(session).as_posix())
    return changed
