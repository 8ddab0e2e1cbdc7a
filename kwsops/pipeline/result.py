"""What every stage function returns to its Luigi task: a one-line detail and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageResult:
    detail: str
    summary: dict = field(default_factory=dict)
