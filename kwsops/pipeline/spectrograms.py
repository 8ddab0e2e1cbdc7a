"""The MakeSpectrograms stage: data/output -> data/spec_ds (log-mel features and the split).

Writes its folder atomically with its stamp as the last file; ``tasks.MakeSpectrograms`` calls it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from pathlib import Path

from kwsops.atomic import atomic_dir
from kwsops.config import FeatureSettings, SplitSettings
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import write_stamp
from kwsops.workspace import Workspace

log = logging.getLogger("kwsops")


def spectrogram_stage(
    ws: Workspace,
    key: str,
    features: FeatureSettings,
    split: SplitSettings,
    *,
    folds: int,
    expected_labels: tuple[str, ...] = (),
    progress: ProgressFn = no_progress,
) -> StageResult:
    """Raises :class:`kwsops.ml.split.DataCheckError` (the run exits 4) before any work when
    the clips cannot make a model with ``folds`` folds."""
    from kwsops.audio.layout import speakers_phrase
    from kwsops.keywords import is_word
    from kwsops.ml.features import make_spectrogram_dataset, spectrogram_examples
    from kwsops.tracking.tracker import stage_task

    params = {"features": features.as_dict(), "split": asdict(split)}
    with stage_task(ws.root, "make spectrogram", "data_processing", params) as tracker:
        with atomic_dir(ws.spec_dir) as tmp:
            summary = make_spectrogram_dataset(
                ws.output_dir,
                tmp,
                features,
                split,
                progress=progress,
                folds=folds,
                expected_labels=tuple(expected_labels),
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
    speakers = len(set(summary.train_speakers) | set(summary.test_speakers))
    words = [label for label in summary.labels if is_word(label)]
    others = [label for label in summary.labels if not is_word(label)]
    detail = (
        f"{summary.train_count} train, {summary.test_count} test clips; {len(words)} "
        f"labels{' + ' + ', '.join(others) if others else ''}, {speakers_phrase(speakers)}; "
        f"test split: {summary.split_kind}"
    )
    if summary.share_note:
        detail += f"; {summary.share_note}"
        log.warning("test split: %s", summary.share_note)
    if summary.fold_note:
        detail += "; folds clip by clip (fewer speakers than folds)"
        log.warning("folds: %s", summary.fold_note)
    facts = {
        "train": summary.train_count,
        "test": summary.test_count,
        "labels": len(words),  # the words; _unknown_ and _silence_ are in the detail
        "speakers": speakers,
        "split": summary.split_kind,
        "split_note": summary.split_note,
        "share_note": summary.share_note,
        "fold_note": summary.fold_note,
        "noise_pieces": summary.noise_pieces,
    }
    return StageResult(detail, {**facts, "task_id": tracker.task_id})
