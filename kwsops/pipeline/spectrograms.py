"""The MakeSpectrograms stage: data/output -> data/spec_ds (log-mel features and the split).

Writes its folder atomically with its stamp as the last file; ``tasks.MakeSpectrograms`` calls it.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from kwsops.atomic import atomic_dir
from kwsops.config import FeatureSettings, SplitSettings
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import write_stamp
from kwsops.workspace import Workspace


def spectrogram_stage(
    ws: Workspace,
    key: str,
    features: FeatureSettings,
    split: SplitSettings,
    *,
    progress: ProgressFn = no_progress,
) -> StageResult:
    from kwsops.ml.features import make_spectrogram_dataset, spectrogram_examples
    from kwsops.tracking.tracker import stage_task

    params = {"features": features.as_dict(), "split": asdict(split)}
    with stage_task(ws.root, "make spectrogram", "data_processing", params) as tracker:
        with atomic_dir(ws.spec_dir) as tmp:
            summary = make_spectrogram_dataset(
                ws.output_dir, tmp, features, split, progress=progress
            )
            write_stamp(tmp, key, train=summary.train_count, test=summary.test_count)
        tracker.single("train clips", summary.train_count)
        tracker.single("test clips", summary.test_count)
        with tempfile.TemporaryDirectory() as plots:
            tracker.figure(
                "sample spectrogram",
                spectrogram_examples(ws.spec_dir, Path(plots) / "spectrograms.png"),
            )
        tracker.artifact("meta", ws.spec_dir / "meta.json")
    detail = f"{summary.train_count} train, {summary.test_count} test clips"
    return StageResult(
        detail,
        {"train": summary.train_count, "test": summary.test_count, "task_id": tracker.task_id},
    )
