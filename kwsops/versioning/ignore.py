"""Keep DVC away from entries it cannot read: a managed block of the workspace's .dvcignore.

`dvc add data/input` opens every file under the folder: a FIFO blocks it forever, a link to
``/dev/zero`` never ends, a socket or a dangling link makes it fail. Before each `dvc add`,
:func:`ignore_unreadable` lists those entries (:mod:`kwsops.entries`) in a block of the root
``.dvcignore`` that kwsops owns and rewrites; the user's own lines around it are kept. The raw
data folder itself is never written to. Patterns are anchored paths with gitignore's special
characters escaped; a character a pattern line cannot hold (a newline, a trailing blank)
becomes ``?``, which may also match a sibling differing only there.
"""

from __future__ import annotations

import re
from pathlib import Path

from kwsops.atomic import atomic_write_text
from kwsops.entries import walk
from kwsops.versioning.runner import relative

BEGIN = "# >>> kwsops: not regular files, which DVC cannot read; rewritten before each dvc add"
END = "# <<< kwsops"
_SPECIAL = re.compile(r"([\\*?\[\]!#])")
_UNWRITABLE = re.compile(r"[\n\r]")


def pattern(rel_to_root: str) -> str:
    """An anchored .dvcignore line matching exactly this path (relative to the root)."""
    escaped = _UNWRITABLE.sub("?", _SPECIAL.sub(r"\\\1", rel_to_root))
    trailing = len(escaped) - len(escaped.rstrip())  # DVC strips a line's trailing blanks
    return f"/{escaped[: len(escaped) - trailing]}{'?' * trailing}"


def _split(text: str) -> tuple[list[str], list[str], list[str]]:
    lines = text.splitlines()
    if BEGIN in lines and END in lines[lines.index(BEGIN) :]:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
        return lines[:start], lines[start + 1 : end], lines[end + 1 :]
    return lines, [], []


def ignore_unreadable(ws_root: Path, target: str) -> list[str]:
    """Write the .dvcignore lines for ``target``'s unreadable entries; return those lines."""
    ws_root = Path(ws_root)
    rel = relative(ws_root, target)
    found = [
        pattern(f"{rel}/{entry.rel}")
        for entry in walk(ws_root / rel)
        if entry.kind == "special"  # symlinked folders: DVC does not follow them either
    ]
    path = ws_root / ".dvcignore"
    text = path.read_text() if path.is_file() else ""
    before, block, after = _split(text)
    prefix = pattern(f"{rel}/")
    block = sorted({*(line for line in block if not line.startswith(prefix)), *found})
    lines = [*before, *([BEGIN, *block, END] if block else []), *after]
    new = "\n".join(lines) + "\n" if lines else ""
    if new.rstrip("\n") != text.rstrip("\n"):
        atomic_write_text(path, new)
    return found
