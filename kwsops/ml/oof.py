"""Out-of-fold scores: each training clip scored by the fold model that never trained on it.

The operating point is chosen on them (:func:`kwsops.ml.spotting.choose_threshold`): honest
held-out scores without touching the test split, which stays for Validate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kwsops.config import TrainSettings
from kwsops.ml.features import load_split
from kwsops.ml.fold.setup import fold_pairs
from kwsops.ml.model import load_model, predict_proba
from kwsops.ml.spotting import ClipScores
from kwsops.ml.store import Rows


def clip_seconds_of(frames: int, hop_length: int, sample_rate: int) -> float:
    """The audio a clip of ``frames`` log-mel frames holds (centred frames: one more)."""
    return (frames - 1) * hop_length / sample_rate


def out_of_fold_scores(
    spec_dir: Path, model_paths: list[Path], settings: TrainSettings
) -> ClipScores:
    """Every training clip's probabilities from the fold that held it out (the folds as
    training drew them: same labels, speakers, ids, count and seed)."""
    data = load_split(spec_dir, "train")
    pairs, _ = fold_pairs(data, settings.folds, settings.seed)
    probs = np.zeros((len(data), len(data.label_names)), dtype=np.float64)
    with torch.inference_mode():
        for (_, val_idx), path in zip(pairs, model_paths, strict=True):
            model, _ = load_model(path)
            rows = Rows(data.features, val_idx)
            for start in range(0, len(val_idx), 256):
                batch = rows[start : start + 256]
                probs[val_idx[start : start + len(batch)]] = predict_proba(model, batch).numpy()
    features = data.feature_settings
    seconds = clip_seconds_of(data.features.shape[2], features.hop_length, features.sample_rate)
    return ClipScores.of(probs, data.labels.numpy(), data.label_names, seconds)
