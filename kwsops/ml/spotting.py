"""A spotter's figures from clip scores: misses, false alarms per hour, the operating point.

A detection fires when the best word's probability reaches the threshold. On a clip of a word
it is a hit when that best word is the clip's word; anything else is a miss. On a clip of
``_unknown_`` speech or ``_silence_`` any firing is a false alarm. Each negative clip stands for
``clip_seconds`` of audio: a clip-level estimate of false alarms per hour (a detector slides
many overlapping windows over an hour, and merges a word's windows into one detection; see
``kwsops detect`` and benchmarks/streams.py for the stream figures).

The operating point is the lowest threshold whose false alarms per hour stay within the
budget on out-of-fold scores: the most words caught for the false alarms allowed. Half an hour
of negatives cannot show 1 per hour (DESIGN.md): :func:`poisson_interval` gives the exact
interval on a rate, and every figure says how many minutes it stands on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kwsops.keywords import OperatingPoint, is_word

LEVEL = 0.95


@dataclass(frozen=True)
class ClipScores:
    """What the spotter figures need of scored clips."""

    true: np.ndarray  # int [N], index into label_names
    best_word: np.ndarray  # int [N], the word with the highest probability
    score: np.ndarray  # float [N], that word's probability
    label_names: list[str]
    clip_seconds: float

    @classmethod
    def of(
        cls, probs: np.ndarray, true: np.ndarray, label_names: list[str], clip_seconds: float
    ) -> ClipScores:
        words = np.array([i for i, name in enumerate(label_names) if is_word(name)])
        probs = np.asarray(probs, dtype=np.float64)
        best = words[probs[:, words].argmax(axis=1)] if len(words) else np.zeros(len(probs), int)
        score = probs[np.arange(len(probs)), best] if len(words) else np.zeros(len(probs))
        return cls(np.asarray(true), best, score, list(label_names), float(clip_seconds))

    @property
    def positive(self) -> np.ndarray:
        return np.array([is_word(self.label_names[i]) for i in self.true], dtype=bool)

    @property
    def negative_hours(self) -> float:
        return float((~self.positive).sum()) * self.clip_seconds / 3600.0

    def as_dict(self) -> dict:
        return {
            "labels": self.label_names,
            "clip_seconds": self.clip_seconds,
            "true": self.true.tolist(),
            "best_word": self.best_word.tolist(),
            "score": [round(float(s), 6) for s in self.score],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ClipScores:
        return cls(
            np.asarray(data["true"], dtype=int),
            np.asarray(data["best_word"], dtype=int),
            np.asarray(data["score"], dtype=float),
            list(data["labels"]),
            float(data["clip_seconds"]),
        )


@dataclass(frozen=True)
class SpottingFigures:
    threshold: float
    miss_rate: float | None  # None without word clips
    words: int
    false_alarms: int
    negative_minutes: float
    false_alarms_per_hour: float | None  # None without negative clips
    interval: tuple[float, float] | None  # exact Poisson, LEVEL, per hour

    def as_dict(self) -> dict:
        return asdict(self)


def poisson_interval(count: int, hours: float, level: float = LEVEL) -> tuple[float, float]:
    """The exact (Garwood) interval of a Poisson rate per hour from ``count`` events."""
    from scipy import stats

    alpha = 1.0 - level
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(low / hours), float(high / hours)


def figures_at(scores: ClipScores, threshold: float) -> SpottingFigures:
    positive = scores.positive
    fired = scores.score >= threshold
    hit = fired & (scores.best_word == scores.true)
    words = int(positive.sum())
    alarms = int((fired & ~positive).sum())
    hours = scores.negative_hours
    return SpottingFigures(
        threshold=float(threshold),
        miss_rate=float(1.0 - hit[positive].mean()) if words else None,
        words=words,
        false_alarms=alarms,
        negative_minutes=round(hours * 60.0, 2),
        false_alarms_per_hour=alarms / hours if hours else None,
        interval=poisson_interval(alarms, hours) if hours else None,
    )


def choose_threshold(scores: ClipScores, budget_per_hour: float) -> OperatingPoint:
    """The lowest threshold with at most ``budget_per_hour`` false alarms per hour of the
    negative clips (a threshold just above the negative score that would exceed it)."""
    hours = scores.negative_hours
    negatives = np.sort(scores.score[~scores.positive])[::-1]
    allowed = int(np.floor(budget_per_hour * hours + 1e-9))
    threshold = 0.0 if allowed >= len(negatives) else float(negatives[allowed]) + 1e-6
    threshold = min(1.0, threshold)
    found = figures_at(scores, threshold)
    return OperatingPoint(
        threshold=round(threshold, 6),
        false_alarms_per_hour=float(budget_per_hour),
        miss_rate=found.miss_rate,
        negative_minutes=found.negative_minutes,
    )


def det_points(scores: ClipScores, count: int = 60) -> list[dict]:
    """The DET curve: miss rate against false alarms per hour over the thresholds at which a
    negative clip stops firing (at most ``count`` points, spread over them), low to high."""
    negatives = np.unique(scores.score[~scores.positive])
    candidates = np.unique(np.concatenate([[0.0], negatives + 1e-6, [1.0]]).clip(0.0, 1.0))
    if len(candidates) > count:
        candidates = candidates[np.linspace(0, len(candidates) - 1, count).round().astype(int)]
    points = []
    for threshold in candidates:
        found = figures_at(scores, float(threshold))
        points.append(
            {
                "threshold": round(float(threshold), 6),
                "miss_rate": found.miss_rate,
                "false_alarms_per_hour": found.false_alarms_per_hour,
            }
        )
    return points
