"""Where a recording sits says what it is: its label folder and, in its name, its speaker.

See docs/ARCHITECTURE.md "Speakers and labels".
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from kwsops.config import AUDIO_EXTENSIONS, WHATSAPP_DIR


def label_and_speaker(rel_path: str | os.PathLike) -> tuple[str | None, str | None]:
    """Label and speaker of a path relative to the input folder (see docs/ARCHITECTURE.md)."""
    parts = PurePosixPath(Path(rel_path).as_posix()).parts
    folders, name = parts[:-1], parts[-1] if parts else ""
    if folders and folders[0].lower() == WHATSAPP_DIR.lower():
        folders = folders[1:]
    label = folders[0] if folders else None
    speaker, sep, _ = name.partition("__")
    return label, (speaker if sep and speaker else None)


def is_supported(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS
