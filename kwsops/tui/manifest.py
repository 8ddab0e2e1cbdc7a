"""The Data screen's numbers: data/output/manifest.csv summarised per label.

Format (docs/ARCHITECTURE.md): source, label, speaker, status (kept|rejected), reason, output,
duration_in, duration_out, sample_rate_in, channels_in.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

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
    problems: list[str] = field(default_factory=list)  # rows that could not be read

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


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def read_manifest(path: str | Path) -> ManifestSummary:
    """Summarise the manifest; raises OSError when missing, ValueError when it is not one."""
    path = Path(path)
    labels: dict[str, LabelStats] = {}
    rejected: list[Rejected] = []
    problems: list[str] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"source", "label", "status"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} is not a kwsops manifest (missing {sorted(missing)})")
        for number, row in enumerate(reader, start=2):
            label = (row.get("label") or "").strip() or NO_LABEL
            stats = labels.setdefault(label, LabelStats(label))
            status = (row.get("status") or "").strip()
            if status == "kept":
                stats.kept += 1
                if (out := _seconds(row.get("duration_out"))) is not None:
                    stats.durations_out.append(out)
            elif status == "rejected":
                stats.rejected += 1
                reason = (row.get("reason") or "").strip() or "no reason given"
                rejected.append(Rejected(row.get("source") or "", label, reason))
            else:
                problems.append(f"line {number}: unknown status {status!r}")
                continue
            if (seconds := _seconds(row.get("duration_in"))) is not None:
                stats.durations_in.append(seconds)
            if speaker := (row.get("speaker") or "").strip():
                stats.speakers.add(speaker)
    ordered = sorted(labels.values(), key=lambda s: (s.label == NO_LABEL, s.label.lower()))
    return ManifestSummary(path, ordered, sorted(rejected, key=lambda r: r.source), problems)
