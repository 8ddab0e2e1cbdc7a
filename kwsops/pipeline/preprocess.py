"""The Preprocess stage: data/input -> data/output (clips and manifest), logged to ClearML.

Writes its folder atomically with its stamp as the last file; ``tasks.Preprocess`` calls it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from kwsops.atomic import atomic_dir, remove_leftovers
from kwsops.config import AudioSettings
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import write_stamp
from kwsops.workspace import Workspace

AUDIO_SAMPLES = 3


def preprocess_stage(
    ws: Workspace,
    key: str,
    audio: AudioSettings,
    *,
    workers: int = 2,
    seed: int = 42,
    progress: ProgressFn = no_progress,
) -> StageResult:
    from kwsops.audio.manifest import read_manifest
    from kwsops.audio.plots import duration_histogram, waveform_examples
    from kwsops.audio.preprocess import preprocess
    from kwsops.tracking.tracker import stage_task

    if not ws.input_dir.is_dir() or not any(ws.input_dir.iterdir()):
        raise FileNotFoundError(
            f"no recordings in {ws.input_dir}: put them in data/input/<label>/ "
            "or run `kwsops demo-data`"
        )
    remove_leftovers(ws.data_dir)
    params = {"audio": audio.as_dict(), "workers": workers, "seed": seed}
    with stage_task(ws.root, "prepare audio", "data_processing", params) as tracker:
        with atomic_dir(ws.output_dir) as tmp:
            summary = preprocess(
                ws.input_dir, tmp, audio, workers=workers, seed=seed, progress=progress
            )
            if summary.kept == 0:
                why = ", ".join(f"{n} {kind}" for kind, n in summary.reasons.items())
                raise ValueError(
                    f"none of the {summary.rejected} files in {ws.input_dir} could be used "
                    f"({why}); add recordings to data/input/<label>/"
                )
            write_stamp(tmp, key, kept=summary.kept, rejected=summary.rejected)
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
        kept = [row for row in rows if row.status == "kept"]
        for index, row in enumerate(kept[:AUDIO_SAMPLES]):
            tracker.audio("raw", row.label, ws.input_dir / row.source, iteration=index)
            tracker.audio("processed", row.label, ws.output_dir / row.output, iteration=index)
        tracker.artifact("manifest", ws.output_dir / "manifest.csv")
    detail = f"{summary.kept} kept, {summary.rejected} rejected"
    return StageResult(
        detail, {"kept": summary.kept, "rejected": summary.rejected, "task_id": tracker.task_id}
    )
