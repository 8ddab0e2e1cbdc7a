"""What libraries say while a run works goes to its run.log, never to the terminal.

C libraries write to file descriptor 2 whatever Python's ``sys.stderr`` is (libmpg123 inside
libsndfile: ``Cannot read next header, a one-frame stream?``, ``Xing stream size off``), and
Python libraries warn through :mod:`warnings` (matplotlib: ``Glyph 128077 missing from
font``). :func:`captured_output` points fds 2 (and 1, unless a live display draws there) at
the run log for the length of the build, so every process the run starts (Luigi's forked
workers, the decoders they spawn) inherits them too, and turns warnings into log records.
kwsops's own lines are printed before and after, on the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def captured_output(log: str | os.PathLike, *, stdout: bool = True) -> Iterator[None]:
    """fd 2 (and fd 1 with ``stdout``) appended to ``log`` inside the block; warnings logged."""
    fds = (1, 2) if stdout else (2,)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    target = os.open(Path(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = {fd: os.dup(fd) for fd in fds}
    logging.captureWarnings(True)
    try:
        for fd in fds:
            os.dup2(target, fd)
        yield
    finally:
        logging.captureWarnings(False)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(target)
