"""The one progress callback every long-running core function accepts."""

from __future__ import annotations

from typing import Protocol


class ProgressFn(Protocol):
    def __call__(self, done: int, total: int, detail: str = "") -> None: ...


def no_progress(done: int, total: int, detail: str = "") -> None:
    """Default callback: progress goes nowhere."""
