"""The stage DAG as data: names, order and what each stage does (for the CLI and console)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    family: str  # the Luigi task family
    title: str
    clearml_name: str | None = None


STAGES: tuple[Stage, ...] = (
    Stage("VersionInput", "version raw recordings"),
    Stage("Preprocess", "decode, trim, pad audio", "prepare audio"),
    Stage("VersionOutput", "version clips"),
    Stage("MakeSpectrograms", "log-mel features and split", "make spectrogram"),
    Stage("VersionSpectrograms", "version spectrograms"),
    Stage("TrainFold", "train one fold", "train model"),
    Stage("Train", "collect folds per batch size"),
    Stage("VersionModels", "version models, commit revision"),
    Stage("Validate", "compare revisions, write report", "validation"),
)
STAGE_ORDER = {stage.family: index for index, stage in enumerate(STAGES)}
