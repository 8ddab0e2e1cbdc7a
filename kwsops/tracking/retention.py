"""What `kwsops gc` may delete of the offline ClearML sessions, and nothing else.

An offline session is a folder plus the zip ClearML makes of it at close: each fold model is
in both (and in DVC). Two things are redundant:

- a session imported to a server (``imported.json``): the server has all of it; its
  artifacts are fetched from there afterwards (:func:`kwsops.tracking.index.fetch_artifacts`);
- the zip of a session whose folder is intact: the import and the artifact reader take the
  folder as well as the zip. That holds too for a session the index never heard of (a stage
  cancelled while ClearML was opening it: ClearML still closes and zips it at exit).

A session of a stage still running, or never closed, is left alone.
"""

from __future__ import annotations

from pathlib import Path

from kwsops.tracking.index import read_index, still_running
from kwsops.tracking.setup import cache_dir


def redundant_sessions(ws_root: Path) -> list[tuple[str, Path]]:
    """(why, path) of every session folder or zip that can go (`kwsops gc` holds the
    workspace lock: no stage opens a session meanwhile)."""
    found: list[tuple[str, Path]] = []
    records = read_index(Path(ws_root))
    indexed = {Path(record.session).name for record in records if record.session}
    for archive in sorted((cache_dir(ws_root) / "offline").glob("offline-*.zip")):
        folder = archive.with_name(archive.name.removesuffix(".zip"))
        if folder.name not in indexed and (folder / "task.json").is_file():
            found.append(("zip of a ClearML session never indexed, kept as a folder", archive))
    for record in records:
        if record.mode != "offline" or not record.session or still_running(record):
            continue
        session = Path(record.session)
        archive = session.with_name(session.name + ".zip")
        if record.imported_id:
            why = f"ClearML session imported as {record.imported_id}"
            found += [(why, path) for path in (session, archive) if path.exists()]
        elif archive.is_file() and (session / "task.json").is_file():
            found.append(("zip of a ClearML session kept as a folder", archive))
    return found
