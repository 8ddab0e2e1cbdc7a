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


STAGES: tuple[Stage, ...] = (
    Stage("VersionInput", "version raw recordings", None, "data/input", "data/input.dvc, remote"),
    Stage(
        "Preprocess",
        "decode, trim, pad audio",
        "prepare audio",
        "data/input",
        "data/output (clips, manifest.csv)",
    ),
    Stage("VersionOutput", "version clips", None, "data/output", "data/output.dvc, remote"),
    Stage(
        "MakeSpectrograms",
        "log-mel features and split",
        "make spectrogram",
        "data/output",
        "data/spec_ds",
    ),
    Stage(
        "VersionSpectrograms",
        "version spectrograms",
        None,
        "data/spec_ds",
        "data/spec_ds.dvc, remote",
    ),
    Stage("TrainFold", "train one fold", None, "data/spec_ds", "data/models/batch_<bs>/fold_<k>"),
    Stage(
        "Train",
        "collect folds per batch size",
        "train model",
        "data/models/batch_<bs>/fold_*",
        "data/models/batch_<bs>/metrics.json",
    ),
    Stage(
        "VersionModels",
        "version models, commit revision",
        None,
        "data/models",
        "data/models.dvc, remote, git commit",
    ),
    Stage(
        "Validate",
        "compare revisions, write report",
        "validation",
        "data/spec_ds, revisions' models",
        "reports/comparison_versions.md, reports/plots",
    ),
)
STAGE_BY_FAMILY = {stage.family: stage for stage in STAGES}
STAGE_ORDER = {stage.family: index for index, stage in enumerate(STAGES)}
