"""A small trained workspace: tone "recordings" through the real Preprocess and MakeSpectrograms
code, then two trainings with different params, each versioned with `dvc add` + push and a git
commit like VersionModels, each logged as a ClearML `train model` task in an offline session.
The session fixture ``trained_workspace`` (tests/conftest.py) builds it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from kwsops.config import AudioSettings, SplitSettings, TrainSettings
from kwsops.versioning.init import init_workspace
from kwsops.workspace import Workspace
from tests.helpers.clips import tone_clip
from tests.helpers.workspaces import clone_workspace

# a label folder a user could make: Markdown, an ANSI colour and clear-screen, a newline
EVIL = "ro|ck*_`[x](y)<b>#\x1b[31m\x1b[2J\\\nz"
LABELS = ("catch", "gun", EVIL)
SPEAKERS, TAKES, BATCH = 8, 3, 4
# small batches: enough optimiser steps (and batch-norm statistics) on 27 clips per fold
STRONG = TrainSettings(batch_size=BATCH, epochs=6, learning_rate=0.003, folds=2, patience=6)
WEAK = TrainSettings(batch_size=BATCH, epochs=1, learning_rate=0.001, folds=2, patience=6)


@dataclass(frozen=True)
class Trained:
    ws: Workspace
    weak_sha: str  # first training: git revision and ClearML task
    weak_task: str
    strong_sha: str  # second training, also what data/models holds now
    strong_task: str


def write_recordings(input_dir: Path) -> None:
    """2.6 s tone "recordings": label k is a sweep in band k, coloured per speaker."""
    for index, label in enumerate(LABELS):
        (input_dir / label).mkdir(parents=True, exist_ok=True)
        for speaker in range(SPEAKERS):
            for take in range(TAKES):
                clip = tone_clip(index, speaker, take, seconds=2.6)
                name = f"spk{speaker:02d}__take{take}.{'flac' if take == 2 else 'wav'}"
                sf.write(input_dir / label / name, clip, 16_000)


def train_and_version(ws: Workspace, settings: TrainSettings) -> tuple[str, str]:
    """Train every fold, log the `train model` task, version data/models, commit: (sha, task)."""
    from kwsops.pipeline.train import collect_folds_stage, train_fold_stage
    from kwsops.versioning.dvc import version_stage
    from kwsops.versioning.git import git_commit

    for fold in range(settings.folds):
        train_fold_stage(ws, "test", settings, fold, threads=1)
    stamp = ws.stamps_dir / f"Train-{settings.learning_rate}.json"
    result = collect_folds_stage(ws, "test", settings, stamp_file=stamp)
    version_stage(ws.root, "data/models")
    sha = git_commit(ws.root, ["data/models.dvc"], f"models lr={settings.learning_rate}")
    assert sha
    return sha, result.summary["task_id"]


def build_trained(root: Path, template: Path | None = None) -> Trained:
    """The workspace at ``root``: a copy of ``template`` (a fresh `kwsops init` workspace) or,
    without one, made by `kwsops init`."""
    from kwsops.audio.preprocess import preprocess
    from kwsops.ml.features import make_spectrogram_dataset

    ws = clone_workspace(template, root) if template else init_workspace(root)
    write_recordings(ws.input_dir)
    summary = preprocess(ws.input_dir, ws.output_dir, AudioSettings(), workers=1)
    # the words' clips and as many generated _silence_ clips as a word has
    assert summary.kept == (len(LABELS) + 1) * SPEAKERS * TAKES
    make_spectrogram_dataset(ws.output_dir, ws.spec_dir, split=SplitSettings(test_size=0.25))
    weak_sha, weak_task = train_and_version(ws, WEAK)
    strong_sha, strong_task = train_and_version(ws, STRONG)
    return Trained(ws, weak_sha, weak_task, strong_sha, strong_task)


def fold_paths(trained: Trained) -> list[Path]:
    """The fold model files of the second training (what data/models holds now)."""
    from kwsops.compare.revisions import _fold_files

    return _fold_files(trained.ws.models_dir / f"batch_{BATCH}")
