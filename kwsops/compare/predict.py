"""`kwsops predict`: classify recordings with a revision's fold ensemble.

Each file goes through the Preprocess chain (:func:`kwsops.audio.clip.load_clip`, word centred) and
:func:`kwsops.ml.features.log_mel` with the model's own feature settings, then the mean of the
fold models' softmaxes. A file that cannot be read gets its own error; the others still run.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kwsops.config import DEFAULT_BATCH_SIZES, AudioSettings, FeatureSettings
from kwsops.keywords import DEFAULT_THRESHOLD, SILENCE, UNKNOWN, is_word, read_operating_point
from kwsops.workspace import Workspace

if TYPE_CHECKING:  # torch is imported where a model runs: `kwsops detect` never imports it
    import torch


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
    from kwsops.compare.model import ReportError, load_comparison
    from kwsops.versioning.tags import PRODUCTION, RegistryError, has_stage, in_stage

    try:  # one git call first; gto reads the tags only when a stage was ever assigned
        production = in_stage(ws.root, PRODUCTION) if has_stage(ws.root, PRODUCTION) else None
    except RegistryError:  # a bad [registry] model_name: said by `kwsops registry`, not here
        production = None
    if production is not None:
        return production.ref

    try:
        comparison = load_comparison(ws.comparison_report)
    except ReportError:
        comparison = None
    if comparison is not None:
        return comparison.best.spec
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


def classify(
    paths: list[Path], files: list[str], threshold: float = DEFAULT_THRESHOLD
) -> list[Prediction]:
    """The fold ensemble's label and probability for each file (an error for a bad file).

    A word is the answer only when it wins with at least ``threshold`` (the revision's
    operating point); otherwise ``_silence_`` when the model scores silence above unknown
    speech, else ``_unknown_``, with the probability that no word was said (one minus the
    best word's), so a model trained without those classes can answer them too."""
    import torch

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
        results.append(Prediction(str(name), *decide(meta["labels"], probs, threshold)))
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


@contextlib.contextmanager
def fetched_models(ws: Workspace, revision: str | None = None) -> Iterator[tuple[str, list[Path]]]:
    """(how the revision is named, its fold model files), fetched into a scratch folder for a git
    or ClearML revision and removed afterwards; :func:`default_revision` when none is named."""
    from kwsops.compare.revisions import materialise

    resolved, shown = resolve_one(ws, revision)
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="predict-", dir=ws.state_dir))
    try:
        yield shown, materialise(ws, resolved, scratch / "models").model_paths
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def revision_threshold(model_paths: list[Path]) -> float:
    """The operating point kept with a revision's fold folders, else DEFAULT_THRESHOLD."""
    if not model_paths:
        return DEFAULT_THRESHOLD
    point = read_operating_point(Path(model_paths[0]).parent.parent)
    return DEFAULT_THRESHOLD if point is None else point.threshold


def decide(labels: list[str], probs: np.ndarray, threshold: float) -> tuple[str, float]:
    """(label, probability) of one clip's ensemble probabilities (see :func:`classify`)."""
    words = [i for i, label in enumerate(labels) if is_word(label)]
    best = max(words, key=lambda i: probs[i]) if words else None
    if best is not None and int(probs.argmax()) == best and probs[best] >= threshold:
        return labels[best], float(probs[best])
    silence = probs[labels.index(SILENCE)] if SILENCE in labels else -1.0
    unknown = probs[labels.index(UNKNOWN)] if UNKNOWN in labels else -1.0
    label = SILENCE if silence > unknown else UNKNOWN
    return label, 1.0 - (float(probs[best]) if best is not None else 0.0)


def predict_files(
    ws: Workspace, files: list[str], revision: str | None = None, threshold: float | None = None
) -> tuple[str, list[Prediction]]:
    """(the revision used, a prediction per file); fetches a git/ClearML revision first. A word
    must reach ``threshold`` (default: the revision's operating point)."""
    with fetched_models(ws, revision) as (spec, paths):
        chosen = revision_threshold(paths) if threshold is None else threshold
        return spec, classify(paths, files, chosen)
