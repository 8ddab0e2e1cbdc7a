"""`kwsops predict`: classify recordings with a revision's fold ensemble.

Each file goes through the Preprocess chain (:func:`kwsops.audio.clip.load_clip`, word centred) and
:func:`kwsops.ml.features.log_mel` with the model's own feature settings, then the mean of the
fold models' softmaxes. A file that cannot be read gets its own error; the others still run.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kwsops.config import DEFAULT_BATCH_SIZES, AudioSettings, FeatureSettings
from kwsops.workspace import Workspace


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str | None = None
    probability: float | None = None
    error: str | None = None


def first_batch_size(ws: Workspace) -> int:
    """The first batch size of luigi.cfg's [VersionModels] (else the default), or the smallest
    trained one when that one has no models in the workspace."""
    parser = configparser.ConfigParser()
    try:
        parser.read(ws.luigi_cfg)
        sizes = json.loads(parser.get("VersionModels", "batch_sizes", fallback="null") or "null")
    except (configparser.Error, ValueError):
        sizes = None
    first = int(sizes[0]) if isinstance(sizes, list) and sizes else DEFAULT_BATCH_SIZES[0]
    if ws.batch_dir(first).is_dir() or not ws.models_dir.is_dir():
        return first
    found = sorted(
        int(m.group(1))
        for p in ws.models_dir.iterdir()
        if (m := re.match(r"^batch_(\d+)$", p.name))
    )
    return found[0] if found else first


def default_revision(ws: Workspace) -> str:
    """The revision a command uses when none is given (predict, detect, export): the version in
    the ``production`` stage (``kws@v1.2.0``), else the best revision of the last comparison
    report, else ``workspace:batch_<first>``."""
    from kwsops.compare.terminal import ReportError, load_comparison
    from kwsops.versioning.tags import PRODUCTION, RegistryError, has_stage, in_stage

    try:  # one git call first; gto reads the tags only when a stage was ever assigned
        production = in_stage(ws.root, PRODUCTION) if has_stage(ws.root, PRODUCTION) else None
    except RegistryError:  # a bad [registry] model_name: said by `kwsops registry`, not here
        production = None
    if production is not None:
        return production.ref

    try:
        data = load_comparison(ws.comparison_report)
    except ReportError:
        data = None
    if data and data.get("best"):
        return str(data["best"])
    return f"workspace:batch_{first_batch_size(ws)}"


def load_ensemble(paths: list[Path]) -> tuple[list[torch.nn.Module], list[list[int]], dict]:
    """Fold models, the column order mapping each onto the first fold's labels, and its meta."""
    from kwsops.compare.evaluation import EvaluationError, align_labels
    from kwsops.ml.model import load_model

    models, columns, first = [], [], None
    for path in paths:
        model, meta = load_model(path)
        first = first or meta
        if meta["features"] != first["features"]:
            raise EvaluationError(f"{path}: feature settings differ from the other folds")
        columns.append(align_labels(meta["labels"], first["labels"], str(path)))
        models.append(model)
    if first is None:
        raise EvaluationError("no fold models to predict with")
    return models, columns, first


def classify(paths: list[Path], files: list[str]) -> list[Prediction]:
    """The fold ensemble's label and probability for each file (an error for a bad file)."""
    from kwsops.audio.clip import AudioError, load_clip
    from kwsops.ml.features import log_mel
    from kwsops.ml.model import predict_proba

    models, columns, meta = load_ensemble(paths)
    settings = FeatureSettings(**meta["features"])
    audio = AudioSettings(sample_rate=settings.sample_rate)
    results: list[Prediction] = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            results.append(
                Prediction(
                    str(name),
                    error=f"a folder, not a recording: give the files in it ({path}/*.wav)",
                )
            )
            continue
        if not path.exists():
            results.append(Prediction(str(name), error="no such file"))
            continue
        try:
            clip = load_clip(name, audio)
        except AudioError as exc:
            results.append(Prediction(str(name), error=exc.reason))
            continue
        except Exception as exc:  # one bad file must not stop the others
            results.append(Prediction(str(name), error=f"unreadable: {exc}"))
            continue
        features = log_mel(torch.from_numpy(clip), settings)
        probs = np.mean(
            [
                predict_proba(m, features)[:, cols].numpy()
                for m, cols in zip(models, columns, strict=True)
            ],
            axis=0,
        )[0]
        best = int(probs.argmax())
        results.append(Prediction(str(name), meta["labels"][best], float(probs[best])))
    return results


def resolve_one(ws: Workspace, revision: str | None):
    """``(ResolvedRevision, how to name it)`` for ``revision`` (None: :func:`default_revision`);
    a registry version is named with its stages: ``kws@v1.2.0 (production)``."""
    from kwsops.compare.revisions import RevisionError, resolve_revisions

    spec = revision or default_revision(ws)
    resolved = resolve_revisions(ws, [spec], [])
    if len(resolved) != 1:
        raise RevisionError(f"revision {spec} names {len(resolved)} model sets; pick one")
    return resolved[0], resolved[0].origin.get("registry") or spec


def predict_files(
    ws: Workspace, files: list[str], revision: str | None = None
) -> tuple[str, list[Prediction]]:
    """(the revision used, a prediction per file); fetches a git/ClearML revision first."""
    from kwsops.compare.revisions import materialise

    resolved, shown = resolve_one(ws, revision)
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="predict-", dir=ws.state_dir))
    try:
        fetched = materialise(ws, resolved, scratch / "models")
        return shown, classify(fetched.model_paths, files)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
