"""``data/output/manifest.csv``: every input file, kept (with its clip) or rejected (with why).

Cells go through :func:`kwsops.text.csv_cell`: a file named ``=cmd|' /C calc'!A0.wav`` is text
in a spreadsheet, not a formula, and reads back unchanged.

The one reader and writer of the manifest (docs/ARCHITECTURE.md "File formats"): the
Preprocess stage writes it, MakeSpectrograms reads its kept rows, the console summarises it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from kwsops.text import csv_cell, csv_value

MANIFEST_NAME = "manifest.csv"
_KINDS = "empty file|unreadable|silent|too long|too short|too large|too slow to decode|unsupported type|no label folder|error"
REASON_KINDS = (*_KINDS.split("|"), "not a regular file", "not a label", "hidden")
# kept: a clip of a label; noise: a background-noise recording for training (Speech Commands'
# _background_noise_); list: an official split list; rejected: with its reason
STATUSES = ("kept", "noise", "list", "rejected")
ADDED_COLUMNS = ("folder", "split")  # optional when reading: manifests written before them
_PARSERS = {"duration_in": float, "duration_out": float, "sample_rate_in": int, "channels_in": int}
_TEXT_COLUMNS = ("source", "status", "reason", "split")  # "" when empty, never None
_GUARD = csv_cell("=")[0]  # the mark csv_cell puts before a cell that would start a formula


@dataclass(frozen=True)
class ManifestRow:
    """One input file: kept (with its output) or rejected (with its reason)."""

    source: str
    label: str | None
    speaker: str | None
    status: str
    reason: str = ""
    output: str | None = None
    duration_in: float | None = None
    duration_out: float | None = None
    sample_rate_in: int | None = None
    channels_in: int | None = None
    folder: str | None = None  # the label folder as written (its case), relative to data/input
    split: str = ""  # "test" or "validation" when an official split list names the file

    @property
    def kept(self) -> bool:
        return self.status == "kept"

    @property
    def noise(self) -> bool:
        return self.status == "noise"

    def to_csv(self) -> dict[str, str]:
        def text(value: object) -> str:
            if value is None:
                return ""
            return f"{value:.3f}" if isinstance(value, float) else csv_cell(value)

        return {f.name: text(getattr(self, f.name)) for f in fields(self)}


MANIFEST_COLUMNS = tuple(f.name for f in fields(ManifestRow))


def reason_kind(reason: str) -> str:
    """The histogram key of a reason: ``too long: 3.41 s > 2.60 s`` -> ``too long``."""
    return next((kind for kind in REASON_KINDS if reason.startswith(kind)), reason)


def _typed_columns(
    header: list[str], records: list[list[str]], names: Sequence[str], guarded: bool
) -> dict[str, list]:
    """``names``' columns of ``records``, typed. ``guarded``: some cell may carry
    :func:`csv_cell`'s mark (the file holds the mark somewhere); without it no cell is checked."""
    position = {name: index for index, name in enumerate(header)}
    width = len(header)
    if any(len(r) != width for r in records):
        records = [r if len(r) == width else (r + [""] * width)[:width] for r in records]
    columns: dict[str, list] = {}
    for name in names:
        index = position.get(name)
        found = [r[index] for r in records] if index is not None else [""] * len(records)
        if guarded:
            found = [csv_value(c) if c.startswith(_GUARD) else c for c in found]
        if name not in _TEXT_COLUMNS:
            parse = _PARSERS.get(name, str)
            found = [parse(c) if c else None for c in found]
        columns[name] = found
    return columns


def write_manifest(rows: list[ManifestRow], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row.to_csv() for row in rows)


def read_columns(path: Path, names: Sequence[str] = MANIFEST_COLUMNS) -> dict[str, list]:
    """The columns ``names`` (default: every one) of a ``manifest.csv`` written by
    :func:`preprocess`, typed, by name in the order asked. Built column by column, only the
    columns asked for: a data set like Speech Commands has 100 000 rows, and the console's Data
    screen summarises them without a row object each."""
    path = Path(path)
    unknown = [name for name in names if name not in MANIFEST_COLUMNS]
    if unknown:
        raise ValueError(f"no manifest column {unknown}; known: {', '.join(MANIFEST_COLUMNS)}")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: manifest not found; run Preprocess first") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    missing = set(MANIFEST_COLUMNS) - set(ADDED_COLUMNS) - set(header)
    if missing:
        raise ValueError(f"{path}: not a kwsops manifest (missing {sorted(missing)})")
    return _typed_columns(header, list(reader), names, _GUARD in text)


def read_manifest(path: Path) -> list[ManifestRow]:
    """Every row of a ``manifest.csv`` written by :func:`preprocess`, typed."""
    return list(map(ManifestRow, *read_columns(path).values()))


@dataclass(frozen=True)
class ManifestParts:
    """What the later stages use of a manifest."""

    clips: list[ManifestRow]  # kept clips of a label, by output path
    noise: list[ManifestRow]  # background-noise recordings, by output path
    lists: list[str]  # official split lists (input paths)


def manifest_parts(output_dir: Path) -> ManifestParts:
    """The kept clips, noise recordings and split lists of ``output_dir/manifest.csv``."""
    rows = read_manifest(Path(output_dir) / MANIFEST_NAME)
    clips = sorted((r for r in rows if r.kept and r.output and r.label), key=lambda r: r.output)
    noise = sorted((r for r in rows if r.noise and r.output), key=lambda r: r.output)
    return ManifestParts(clips, noise, [r.source for r in rows if r.status == "list"])
