"""The stage DAG as data: names, order and what each stage does (for the CLI and console)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    family: str  # the Luigi task family
    title: str
    clearml_name: str | None = None
    reads: str = ""
    writes: str = ""
    unit: str = ""  # what its progress counts (done/total)


STAGES: tuple[Stage, ...] = (
    Stage(
        "VersionInput",
        "version raw recordings",
        None,
        "data/input",
        "data/input.dvc, remote",
        unit="step",
    ),
    Stage(
        "Preprocess",
        "decode, trim, pad audio",
        "prepare audio",
        "data/input",
        "data/output (clips, manifest.csv)",
        unit="files",
    ),
    Stage(
        "VersionOutput",
        "version clips",
        None,
        "data/output",
        "data/output.dvc, remote",
        unit="step",
    ),
    Stage(
        "MakeSpectrograms",
        "log-mel features and split",
        "make spectrogram",
        "data/output",
        "data/spec_ds",
        unit="clips",
    ),
    Stage(
        "VersionSpectrograms",
        "version spectrograms",
        None,
        "data/spec_ds",
        "data/spec_ds.dvc, remote",
        unit="step",
    ),
    Stage(
        "TrainFold",
        "train one fold",
        None,
        "data/spec_ds",
        "data/models/batch_<bs>/fold_<k>",
        unit="epochs",
    ),
    Stage(
        "Train",
        "train the folds of a batch size together (or collect TrainFold's)",
        "train model",
        "data/spec_ds (or data/models/batch_<bs>/fold_*)",
        "data/models/batch_<bs>/fold_*, data/models/batch_<bs>/metrics.json",
        unit="epochs",  # the epochs of all its folds (a fold stopped early counts the rest)
    ),
    Stage(
        "VersionModels",
        "version models, commit revision",
        None,
        "data/models",
        "data/models.dvc, remote, git commit",
        unit="step",
    ),
    Stage(
        "Validate",
        "compare revisions, write report",
        "validation",
        "data/spec_ds, revisions' models",
        "reports/comparison_versions.md, reports/plots",
        unit="revisions",
    ),
)
STAGE_BY_FAMILY = {stage.family: stage for stage in STAGES}
STAGE_ORDER = {stage.family: index for index, stage in enumerate(STAGES)}
