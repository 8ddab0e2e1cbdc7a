"""The Preprocess stage: data/input -> data/output (clips and manifest), logged to ClearML.

Writes its folder atomically with its stamp as the last file; ``tasks.Preprocess`` calls it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kwsops import exitcodes, keywords
from kwsops.atomic import atomic_dir, remove_leftovers
from kwsops.config import AudioSettings, LayoutSettings
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import write_stamp
from kwsops.workspace import Workspace

if TYPE_CHECKING:
    from kwsops.audio.preprocess import PreprocessSummary

AUDIO_SAMPLES = 3
NO_UNKNOWN = keywords.NO_UNKNOWN
log = logging.getLogger("kwsops")


def summary_line(summary: PreprocessSummary) -> str:
    """The stage's one line: files kept and rejected, labels, speakers, noise, official split."""
    from kwsops.audio.layout import speakers_phrase
    from kwsops.keywords import UNKNOWN, is_word

    words = [label for label in summary.labels if is_word(label)]
    labels = f"{len(words)} label" + ("" if len(words) == 1 else "s")
    unknown = summary.kept_per_label.get(UNKNOWN, 0)
    parts = [
        f"{summary.kept} kept, {summary.rejected} rejected",
        f"{labels}, {speakers_phrase(summary.speakers)}",
        f"{unknown} unknown-speech clips" if unknown else NO_UNKNOWN,
    ]
    if summary.noise:
        parts.append(f"{summary.noise} noise recordings")
    if summary.split_lists:
        parts.append("official split lists")
    return "; ".join(parts)


class NoRecordingsError(FileNotFoundError):
    """data/input holds no recording at all: the run exits 4 before anything runs."""

    exit_code = exitcodes.BAD_CONFIG


def require_recordings(ws: Workspace) -> None:
    """NoRecordingsError unless some file under data/input has a recording's extension (the
    first one found ends the walk: a large data set costs nothing)."""
    from kwsops.audio.layout import is_supported

    for _, _, files in os.walk(ws.input_dir):
        if any(is_supported(name) for name in files):
            return
    raise NoRecordingsError(
        f"no recordings in {ws.input_dir}: put them in data/input/<label>/ "
        "or run `kwsops demo-data`"
    )


def preprocess_stage(
    ws: Workspace,
    key: str,
    audio: AudioSettings,
    *,
    layout: LayoutSettings | None = None,
    workers: int = 2,
    seed: int = 42,
    progress: ProgressFn = no_progress,
) -> StageResult:
    from kwsops.audio.layout import check_layout
    from kwsops.audio.manifest import read_manifest
    from kwsops.audio.plots import duration_histogram, waveform_examples
    from kwsops.audio.preprocess import preprocess
    from kwsops.tracking.tracker import stage_task

    require_recordings(ws)
    layout = layout or LayoutSettings()
    check_layout(layout)  # a bad setting fails the run (exit 4) before any work
    remove_leftovers(ws.data_dir)
    params = {
        "audio": audio.as_dict(),
        "layout": layout.as_dict(),
        "workers": workers,
        "seed": seed,
    }
    with stage_task(ws.root, "prepare audio", "data_processing", params) as tracker:
        with atomic_dir(ws.output_dir) as tmp:
            summary = preprocess(
                ws.input_dir,
                tmp,
                audio,
                layout=layout,
                workers=workers,
                seed=seed,
                progress=progress,
            )
            if summary.kept:  # without a stamp the folder is never taken for done
                write_stamp(tmp, key, kept=summary.kept, rejected=summary.rejected)
        if summary.kept == 0:  # the manifest stays, so every file's reason is where it is read
            why = ", ".join(f"{n} {kind}" for kind, n in summary.reasons.items())
            raise ValueError(
                f"none of the {summary.rejected} files in {ws.input_dir} could be used "
                f"({why}; each reason is in data/output/manifest.csv); add recordings to "
                "data/input/<label>/"
            )
        rows = read_manifest(ws.output_dir / "manifest.csv")
        tracker.single("files kept", summary.kept)
        tracker.single("files rejected", summary.rejected)
        for label, count in sorted(summary.kept_per_label.items()):
            tracker.single(f"kept {label}", count)
        with tempfile.TemporaryDirectory() as plots:
            histogram = duration_histogram(rows, Path(plots) / "durations.png")
            waveforms = waveform_examples(ws.output_dir, rows, Path(plots) / "waveforms.png")
            tracker.figure("duration histogram", histogram)
            tracker.figure("sample waveforms", waveforms)
        kept = [row for row in rows if row.kept and (ws.input_dir / row.source).is_file()]
        for index, row in enumerate(kept[:AUDIO_SAMPLES]):
            tracker.audio("raw", row.label, ws.input_dir / row.source, iteration=index)
            tracker.audio("processed", row.label, ws.output_dir / row.output, iteration=index)
        tracker.single("speakers", summary.speakers)
        tracker.single("noise recordings", summary.noise)
        tracker.artifact("manifest", ws.output_dir / "manifest.csv")
    for label, others in summary.merged_spellings.items():
        log.info("label %s also spelled %s: merged", label, ", ".join(others))
    facts = {
        "kept": summary.kept,
        "rejected": summary.rejected,
        "labels": summary.labels,
        "speakers": summary.speakers,
        "noise": summary.noise,
        "merged_spellings": summary.merged_spellings,
    }
    return StageResult(summary_line(summary), {**facts, "task_id": tracker.task_id})
