"""What `kwsops gc` may delete of the offline ClearML sessions, and nothing else.

An offline session is a folder plus the zip ClearML makes of it at close: each fold model is
in both (and in DVC). Two things are redundant:

- a session imported to a server (``imported.json``): the server has all of it; its
  artifacts are fetched from there afterwards (:func:`kwsops.tracking.index.fetch_artifacts`);
- the zip of a session whose folder is intact: the import and the artifact reader take the
  folder as well as the zip.

A session of a stage still running, or never closed, is left alone.
"""

from __future__ import annotations

from pathlib import Path

from kwsops.tracking.index import read_index, still_running


def redundant_sessions(ws_root: Path) -> list[tuple[str, Path]]:
    """(why, path) of every session folder or zip that can go."""
    found: list[tuple[str, Path]] = []
    for record in read_index(Path(ws_root)):
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
