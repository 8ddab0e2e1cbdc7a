"""Where a revision fails on the test split: accuracy per speaker and the misclassified clips.

Per speaker, accuracy is the mean over fold models (as the headline accuracy) beside the fold
ensemble's; speakers come worst first. A misclassified clip is one the fold ensemble gets wrong
(the prediction `kwsops predict` would give), most confident mistakes first, named by its
source file under data/input so a user can listen to it. The JSON keeps every row; the
Markdown report, `kwsops report` and the console show the first ``SHOWN``.
"""

from __future__ import annotations

import numpy as np

SHOWN = 10
UNKNOWN_SPEAKER = "(unknown)"


def per_speaker(fold_probs: list[np.ndarray], y_true: np.ndarray, speakers: list[str]) -> list:
    """``[{speaker, clips, accuracy, ensemble_accuracy}]`` worst first; [] when no test clip
    names a speaker (clips without one, among named ones, count as ``(unknown)``)."""
    if not any(speakers):
        return []
    y_true = np.asarray(y_true)
    correct = np.mean([p.argmax(axis=1) == y_true for p in fold_probs], axis=0)
    ensemble = np.mean(fold_probs, axis=0).argmax(axis=1) == y_true
    names = np.array([s or UNKNOWN_SPEAKER for s in speakers], dtype=object)
    rows = []
    for name in sorted(set(names)):
        mask = names == name
        rows.append(
            {
                "speaker": str(name),
                "clips": int(mask.sum()),
                "accuracy": float(correct[mask].mean()),
                "ensemble_accuracy": float(ensemble[mask].mean()),
            }
        )
    return sorted(rows, key=lambda r: (r["accuracy"], r["ensemble_accuracy"], r["speaker"]))


def misclassified(
    fold_probs: list[np.ndarray],
    y_true: np.ndarray,
    label_names: list[str],
    speakers: list[str],
    sources: list[str],
    ids: list[str],
) -> list[dict]:
    """The clips the fold ensemble gets wrong, most confident first: ``{source, clip, speaker,
    true, predicted, probability, p_true}`` (probabilities of the ensemble's softmax)."""
    y_true = np.asarray(y_true)
    ensemble = np.mean(fold_probs, axis=0)
    predicted = ensemble.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    rows = [
        {
            "source": sources[i],
            "clip": ids[i],
            "speaker": speakers[i],
            "true": label_names[y_true[i]],
            "predicted": label_names[predicted[i]],
            "probability": round(float(ensemble[i, predicted[i]]), 4),
            "p_true": round(float(ensemble[i, y_true[i]]), 4),
        }
        for i in wrong
    ]
    return sorted(rows, key=lambda r: (-r["probability"], r["source"]))
