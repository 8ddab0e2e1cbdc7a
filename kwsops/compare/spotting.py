"""Validate's spotter figures for one revision: misses and false alarms per hour on the test
split at the operating threshold, the DET curve (the reports show them: sections, plots).

The threshold is chosen for ``[Validate] false_alarms_per_hour`` on the revision's out-of-fold
scores (``oof_scores.json``, kept by Train beside the folds), so the test split only measures
it; a revision without them uses the operating point it keeps, else DEFAULT_THRESHOLD.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from kwsops.keywords import (
    DEFAULT_BUDGET,
    DEFAULT_THRESHOLD,
    read_operating_point,
)
from kwsops.ml.spotting import ClipScores, choose_threshold, det_points, figures_at

OOF_SCORES = "oof_scores.json"
DET_BUDGETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 100.0)  # false alarms per hour, text DET
log = logging.getLogger("kwsops")


def _oof(folder: Path) -> ClipScores | None:
    path = folder / OOF_SCORES
    if not path.is_file():
        return None
    try:
        return ClipScores.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); using the kept operating point", path, exc)
        return None


def operating_threshold(folder: Path | None, budget: float) -> tuple[float, str]:
    """(threshold, where it came from) for ``budget`` false alarms per hour."""
    if folder is not None:
        oof = _oof(folder)
        if oof is not None and oof.negative_hours:
            return choose_threshold(oof, budget).threshold, "out-of-fold scores"
        try:
            kept = read_operating_point(folder)
        except ValueError as exc:
            log.warning("%s", exc)
            kept = None
        if kept is not None:
            return kept.threshold, f"kept for {kept.false_alarms_per_hour:g}/h"
    return DEFAULT_THRESHOLD, "default"


def spotting_summary(
    fold_probs: list[np.ndarray],
    y_true: np.ndarray,
    label_names: list[str],
    clip_seconds: float,
    folder: Path | None,
    budget: float = DEFAULT_BUDGET,
) -> dict | None:
    """The fold ensemble's spotter figures on the test clips; None without ``_unknown_`` or
    ``_silence_`` clips (nothing to count false alarms on)."""
    scores = ClipScores.of(np.mean(fold_probs, axis=0), y_true, label_names, clip_seconds)
    if not scores.negative_hours or not scores.positive.any():
        return None
    threshold, source = operating_threshold(folder, budget)
    at_budget = figures_at(scores, threshold)
    return {
        "budget": budget,
        "threshold": threshold,
        "threshold_from": source,
        "clip_seconds": clip_seconds,
        "at_budget": at_budget.as_dict(),
        "at_default": figures_at(scores, DEFAULT_THRESHOLD).as_dict(),
        "det": det_points(scores),
        "det_text": det_rows(scores),
    }


def det_rows(scores: ClipScores) -> list[dict]:
    """The DET curve read at a few budgets: the lowest miss rate with at most that many
    false alarms per hour on the test negatives (threshold chosen on the test split itself:
    what the model could do, not what its operating point does)."""
    rows = []
    for budget in DET_BUDGETS:
        point = choose_threshold(scores, budget)
        rows.append({"false_alarms_per_hour": budget, "miss_rate": point.miss_rate,
                     "threshold": point.threshold})  # fmt: skip
    return rows
