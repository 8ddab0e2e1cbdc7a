"""The Data screen's numbers: data/output/manifest.csv (read by :mod:`kwsops.audio.manifest`)
summarised per label, with the background-noise recordings and the official split lists."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.audio import manifest

NO_LABEL = "(no label)"
NOISE = "(noise)"


@dataclass
class LabelStats:
    label: str
    kept: int = 0
    rejected: int = 0
    speakers: set[str] = field(default_factory=set)  # named by kept clips
    durations_in: list[float] = field(default_factory=list)
    durations_out: list[float] = field(default_factory=list)
    spellings: set[str] = field(default_factory=set)  # label folder names as written

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
    noise: LabelStats = field(default_factory=lambda: LabelStats(NOISE))
    lists: list[str] = field(default_factory=list)  # official split lists (input paths)

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.labels)

    @property
    def total(self) -> int:
        return sum(s.total for s in self.labels) + self.noise.total + len(self.lists)

    @property
    def label_count(self) -> int:
        """Labels with kept clips: the labels a model is trained on."""
        return sum(1 for s in self.labels if s.kept and s.label != NO_LABEL)

    @property
    def speakers(self) -> int:
        """Speakers the kept clips name (0: unknown), as the report and `kwsops runs show`."""
        return len({s for stats in self.labels for s in stats.speakers})

    @property
    def merged(self) -> dict[str, list[str]]:
        """Label -> the other spellings of its folder that were merged into it."""
        return {
            s.label: sorted(s.spellings - {s.label}) for s in self.labels if s.spellings - {s.label}
        }

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
    noise, lists = LabelStats(NOISE), []
    columns = manifest.read_columns(path)
    rows = zip(
        *(columns[name] for name in ("source", "label", "speaker", "status", "reason")),
        *(columns[name] for name in ("duration_in", "duration_out", "folder")),
        strict=True,
    )
    for source, label, speaker, status, reason, duration_in, duration_out, folder in rows:
        if status == "list":
            lists.append(source)
            continue
        label = label or NO_LABEL
        stats = (
            noise
            if status == "noise"
            else labels.get(label) or labels.setdefault(label, LabelStats(label))
        )
        if status == "kept" or status == "noise":
            stats.kept += 1
            if duration_out is not None:
                stats.durations_out.append(duration_out)
            if speaker and status == "kept":
                stats.speakers.add(speaker)
        else:
            stats.rejected += 1
            rejected.append(Rejected(source, label, reason or "no reason given"))
        if duration_in is not None:
            stats.durations_in.append(duration_in)
        if folder:
            stats.spellings.add(folder.rsplit("/", 1)[-1])
    ordered = sorted(labels.values(), key=lambda s: (s.label == NO_LABEL, s.label.lower()))
    return ManifestSummary(path, ordered, sorted(rejected, key=lambda r: r.source), noise, lists)
