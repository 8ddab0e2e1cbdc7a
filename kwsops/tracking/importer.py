"""`kwsops clearml import`: upload the workspace's offline ClearML sessions to a server."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from kwsops.text import error_line
from kwsops.tracking.index import (
    read_imported,
    read_index,
    require_server,
    still_running,
    write_imported,
)
from kwsops.tracking.setup import TrackingError, clearml_dir, clearml_env, server_configured

log = logging.getLogger("kwsops.tracking")


def import_offline_sessions(ws_root: Path) -> list[str]:
    """Upload every offline session not yet imported to the configured server; returns the new
    server task ids. A failed stage's task is marked failed after import (ClearML marks every
    imported session completed). Raises TrackingError with what to do when it cannot."""
    ws_root = Path(ws_root)
    imported = read_imported(ws_root)
    waiting = [
        r
        for r in read_index(ws_root)
        if r.mode == "offline" and r.session and r.task_id not in imported and not still_running(r)
    ]
    if not server_configured():
        raise TrackingError(
            "no ClearML server configured: run `clearml-init` (writes ~/clearml.conf) or set "
            "CLEARML_API_HOST, CLEARML_API_ACCESS_KEY and CLEARML_API_SECRET_KEY; "
            f"{len(waiting)} offline session(s) wait in {clearml_dir(ws_root)}"
        )
    from clearml import Task

    new_ids, failures = [], []
    with clearml_env(ws_root):
        require_server()
        Task.set_offline(False)
        for record in waiting:
            session = Path(record.session or "")
            archive = session.with_name(session.name + ".zip")
            try:
                server_id = Task.import_offline_session(
                    str(archive if archive.is_file() else session)
                )
                if server_id is None:
                    raise TrackingError("ClearML returned no task id")
                if record.status != "completed":
                    reason = record.error or f"stage {record.status} (process ended)"
                    Task.get_task(task_id=server_id).mark_failed(status_reason=reason, force=True)
            except Exception as exc:
                log.debug("import of %s failed:\n%s", record.task_id, traceback.format_exc())
                failures.append(f"{record.task_id} ({record.name}): {error_line(exc)}")
                continue
            imported[record.task_id] = server_id
            write_imported(ws_root, imported)
            new_ids.append(server_id)
    if failures:
        raise TrackingError(
            f"imported {len(new_ids)} session(s); {len(failures)} failed: " + "; ".join(failures)
        )
    return new_ids
