"""The Data screen's numbers: data/output/manifest.csv (read by :mod:`kwsops.audio.manifest`)
summarised per label, with the background-noise recordings and the official split lists."""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.audio import manifest
from kwsops.keywords import UNKNOWN, is_word
from kwsops.stamps import file_stamp

NO_LABEL = "(no label)"
NOISE = "(noise)"
_SUMMARY_COLUMNS = (
    "source",
    "label",
    "speaker",
    "status",
    "reason",
    "duration_in",
    "duration_out",
    "folder",
)


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
    # the Data screen's table rows made from it, by layout (kwsops.tui.screens.data.laid_out)
    layouts: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.labels)

    @property
    def total(self) -> int:
        return sum(s.total for s in self.labels) + self.noise.total + len(self.lists)

    @property
    def label_count(self) -> int:
        """Words with kept clips: the labels a model spots (``_unknown_`` and ``_silence_``
        are trained on too, and listed, but are not words)."""
        return sum(1 for s in self.labels if s.kept and s.label != NO_LABEL and is_word(s.label))

    @property
    def unknown_speech(self) -> int:
        """Kept ``_unknown_`` clips: without them a model calls any speech a word."""
        return sum(s.kept for s in self.labels if s.label == UNKNOWN)

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
    columns = manifest.read_columns(path, _SUMMARY_COLUMNS)
    source, label_of, speaker, status, reason, duration_in, duration_out, folder = columns.values()
    # one pass sorts rows into labels; the per-label figures are then gathered a column at a
    # time (a 100 000-row manifest: one Python step per row, not ten)
    members: dict[str, list[int]] = {}
    noise_rows: list[int] = []
    for index, (state, label) in enumerate(zip(status, label_of, strict=True)):
        if state == "list":
            lists.append(source[index])
        elif state == "noise":
            noise_rows.append(index)
        else:
            members.setdefault(label or NO_LABEL, []).append(index)
    for name, rows in [*members.items(), (NOISE, noise_rows)]:
        stats = noise if name == NOISE else labels.setdefault(name, LabelStats(name))
        kept = [i for i in rows if status[i] in ("kept", "noise")]
        stats.kept = len(kept)
        stats.rejected = len(rows) - len(kept)
        stats.durations_out = [d for i in kept if (d := duration_out[i]) is not None]
        stats.durations_in = [d for i in rows if (d := duration_in[i]) is not None]
        if name != NOISE:
            stats.speakers = {s for i in kept if (s := speaker[i])}
            if stats.rejected:
                rejected.extend(
                    Rejected(source[i], name, reason[i] or "no reason given")
                    for i in rows
                    if status[i] not in ("kept", "noise")
                )
        stats.spellings = {f.rsplit("/", 1)[-1] for f in {folder[i] for i in rows} if f}
    ordered = sorted(labels.values(), key=lambda s: (s.label == NO_LABEL, s.label.lower()))
    return ManifestSummary(path, ordered, sorted(rejected, key=lambda r: r.source), noise, lists)


Stamp = tuple[int, int]  # (mtime_ns, size) of the manifest; (0, -1): no file


class SummaryCache:
    """The last summary of one manifest, by the file's stamp. The console reads it ahead, while
    it is idle after starting, so that the Data screen opens at once (a 100 000-row manifest
    takes ~0.5 s to read); the screen reads through it, and a changed file is read again.
    Thread-safe: a second reader of the same stamp waits for the first one's summary rather
    than reading the file again. Errors are not kept: the next read tries again."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: Stamp | None = None
        self._summary: ManifestSummary | None = None

    def stamp(self) -> Stamp:
        return file_stamp(self.path)

    def read(self, stamp: Stamp | None = None, *, fresh: bool = False) -> ManifestSummary | None:
        """The summary of the manifest as of ``stamp`` (default: its stamp now); None when
        there is none. ``fresh``: read the file whatever the stamp says. Raises OSError or
        ValueError as :func:`read_manifest` does."""
        with self._lock:
            stamp = stamp or self.stamp()
            if stamp == self._stamp and not fresh:
                return self._summary
            try:
                summary = read_manifest(self.path)
            except FileNotFoundError:
                summary = None
            self._stamp, self._summary = stamp, summary
            return summary
