"""Optional task source: a central Luigi scheduler (luigid) and its HTTP API.

Used when the workspace's luigi.cfg says ``[core] local_scheduler = false`` and names a
``default_scheduler_host`` (and port): then tasks run by anyone (cron, ``luigi --module
tasks``, other machines) show on the dashboard even without a kwsops run folder.
"""

from __future__ import annotations

import configparser
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# luigid's task statuses -> the dashboard's states
STATUS_MAP = {
    "RUNNING": "running",
    "PENDING": "pending",
    "DONE": "done",
    "FAILED": "failed",
    "DISABLED": "failed",
    "BATCH_RUNNING": "running",
}


@dataclass(frozen=True)
class SchedulerTask:
    task_id: str
    family: str
    state: str
    params: dict
    started: float | None
    detail: str
    progress: float | None  # percent


def scheduler_address(luigi_cfg: Path) -> tuple[str, int] | None:
    """(host, port) of the central scheduler luigi.cfg configures, or None for local."""
    config = configparser.ConfigParser()
    try:
        config.read(luigi_cfg)
    except configparser.Error:
        return None
    if not config.has_section("core"):
        return None
    core = config["core"]
    local = core.get("local_scheduler", core.get("local-scheduler", "false")).strip().lower()
    host = core.get("default_scheduler_host", core.get("default-scheduler-host", "")).strip()
    if local in ("true", "1", "yes") or not host:
        return None
    port = core.get("default_scheduler_port", core.get("default-scheduler-port", "8082"))
    try:
        return host, int(port)
    except ValueError:
        return None


class LuigidSource:
    """Reads task states from luigid's ``/api/task_list``; every call has a short timeout."""

    def __init__(self, host: str, port: int, timeout: float = 1.5) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _call(self, method: str, **arguments: object) -> dict:
        query = urllib.parse.urlencode({"data": json.dumps(arguments)})
        url = f"http://{self.host}:{self.port}/api/{method}?{query}"
        with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
            return json.load(response).get("response") or {}

    def tasks(
        self, statuses: tuple[str, ...] = ("RUNNING", "PENDING", "FAILED", "DONE")
    ) -> list[SchedulerTask]:
        found: list[SchedulerTask] = []
        for status in statuses:
            listing = self._call("task_list", status=status, upstream_status="", search="")
            if "num_tasks" in listing and len(listing) == 1:
                continue  # too many to list: luigid answers with a count only
            for task_id, info in listing.items():
                if not isinstance(info, dict):
                    continue
                progress = info.get("progress_percentage")
                found.append(
                    SchedulerTask(
                        task_id=task_id,
                        family=str(info.get("name", "")),
                        state=STATUS_MAP.get(str(info.get("status")), "pending"),
                        params=dict(info.get("params") or {}),
                        started=info.get("time_running") or info.get("start_time"),
                        detail=str(info.get("status_message") or ""),
                        progress=float(progress) if progress is not None else None,
                    )
                )
        return found
