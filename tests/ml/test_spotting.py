"""kwsops.ml.spotting: misses, false alarms per hour and the operating point on known scores."""

from __future__ import annotations

import numpy as np
import pytest

from kwsops.ml.spotting import (
    ClipScores,
    choose_threshold,
    det_points,
    figures_at,
    poisson_interval,
)

NAMES = ["_silence_", "_unknown_", "catch", "gun"]
CLIP = 3.6  # seconds: 1000 negative clips are exactly one hour


def scores(word_scores: list[float], negative_scores: list[float]) -> ClipScores:
    """Word clips of catch scoring ``word_scores`` on catch, then negatives scoring
    ``negative_scores`` on gun (the rest of each clip's probability on _unknown_)."""
    rows, true = [], []
    for p in word_scores:
        rows.append([0.0, 1.0 - p, p, 0.0])
        true.append(2)
    for p in negative_scores:
        rows.append([0.0, 1.0 - p, 0.0, p])
        true.append(1)
    return ClipScores.of(np.array(rows), np.array(true), NAMES, CLIP)


def test_a_word_fires_on_its_best_word_and_negatives_count_per_hour() -> None:
    found = scores([0.9, 0.6, 0.3, 0.95], [0.7] * 3 + [0.1] * 997)
    at = figures_at(found, 0.5)
    assert at.words == 4 and at.miss_rate == pytest.approx(0.25)
    assert at.false_alarms == 3 and at.negative_minutes == pytest.approx(60.0)
    assert at.false_alarms_per_hour == pytest.approx(3.0)
    low, high = at.interval
    assert low < 3.0 < high


def test_a_wrong_word_is_a_miss_not_a_hit() -> None:
    probs = np.array([[0.0, 0.1, 0.1, 0.8]])  # a catch clip whose best word is gun
    found = ClipScores.of(probs, np.array([2]), NAMES, CLIP)
    assert figures_at(found, 0.5).miss_rate == 1.0


def test_the_operating_point_is_the_lowest_threshold_within_the_budget() -> None:
    negatives = [0.9, 0.8, 0.7] + [0.05] * 1997  # two hours of negatives
    found = scores([0.95, 0.85, 0.75, 0.65, 0.4], negatives)
    one = choose_threshold(found, 1.0)  # two false alarms allowed: above the third, 0.7
    assert one.threshold == pytest.approx(0.7, abs=1e-5) and one.threshold > 0.7
    assert one.miss_rate == pytest.approx(0.4) and one.negative_minutes == pytest.approx(120)
    assert figures_at(found, one.threshold).false_alarms == 2
    strict = choose_threshold(found, 0.1)  # none allowed in two hours: above the highest
    assert strict.threshold > 0.9 and strict.miss_rate == pytest.approx(0.8)
    loose = choose_threshold(found, 5000.0)  # every negative may fire
    assert loose.threshold == 0.0 and loose.miss_rate == 0.0


def test_poisson_interval_is_the_exact_one() -> None:
    assert poisson_interval(0, 1.0) == pytest.approx((0.0, 3.6889), abs=1e-3)
    assert poisson_interval(10, 2.0) == pytest.approx((4.7954 / 2, 18.3904 / 2), abs=1e-3)


def test_det_points_run_from_every_alarm_to_none() -> None:
    found = scores([0.9, 0.5, 0.2], [0.8, 0.3] + [0.01] * 998)
    points = det_points(found)
    rates = [p["false_alarms_per_hour"] for p in points]
    misses = [p["miss_rate"] for p in points]
    assert rates[0] == pytest.approx(1000.0) and rates[-1] == 0.0
    assert rates == sorted(rates, reverse=True) and misses == sorted(misses)
    assert misses[0] == 0.0 and misses[-1] == 1.0


def test_scores_round_trip_through_json() -> None:
    found = scores([0.9], [0.1, 0.2])
    back = ClipScores.from_dict(found.as_dict())
    assert back.label_names == NAMES and back.clip_seconds == CLIP
    assert np.allclose(back.score, found.score) and (back.true == found.true).all()
