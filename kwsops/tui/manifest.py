"""The Data screen's numbers: data/output/manifest.csv (read by :mod:`kwsops.audio.manifest`)
summarised per label."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.audio import manifest

NO_LABEL = "(no label)"


@dataclass
class LabelStats:
    label: str
    kept: int = 0
    rejected: int = 0
    speakers: set[str] = field(default_factory=set)
    durations_in: list[float] = field(default_factory=list)
    durations_out: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.kept + self.rejected


@dataclass(frozen=True)
class Rejected:
    source: str
    label: str
    reason: str


@dataclass
class ManifestSummary:
    path: Path
    labels: list[LabelStats]
    rejected: list[Rejected]

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.labels)

    @property
    def total(self) -> int:
        return sum(s.total for s in self.labels)

    def all_durations(self, which: str = "in") -> list[float]:
        attr = "durations_in" if which == "in" else "durations_out"
        return [d for s in self.labels for d in getattr(s, attr)]


def spread(values: list[float]) -> tuple[float, float, float] | None:
    """(min, median, max), or None without values."""
    if not values:
        return None
    return min(values), statistics.median(values), max(values)


def read_manifest(path: str | Path) -> ManifestSummary:
    """Summarise the manifest; raises OSError when missing, ValueError when it is not one."""
    path = Path(path)
    labels: dict[str, LabelStats] = {}
    rejected: list[Rejected] = []
    for row in manifest.read_manifest(path):
        label = row.label or NO_LABEL
        stats = labels.setdefault(label, LabelStats(label))
        if row.kept:
            stats.kept += 1
            if row.duration_out is not None:
                stats.durations_out.append(row.duration_out)
        else:
            stats.rejected += 1
            rejected.append(Rejected(row.source, label, row.reason or "no reason given"))
        if row.duration_in is not None:
            stats.durations_in.append(row.duration_in)
        if row.speaker:
            stats.speakers.add(row.speaker)
    ordered = sorted(labels.values(), key=lambda s: (s.label == NO_LABEL, s.label.lower()))
    return ManifestSummary(path, ordered, sorted(rejected, key=lambda r: r.source))
