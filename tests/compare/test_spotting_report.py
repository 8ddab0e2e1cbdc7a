"""kwsops.compare.spotting: the spotter figures per revision and their place in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rich.console import Console

from kwsops.compare.markdown import render_markdown
from kwsops.compare.model import Comparison
from kwsops.compare.plots import plot_det
from kwsops.compare.spotting import OOF_SCORES, spotting_summary
from kwsops.compare.terminal import comparison_view
from kwsops.keywords import DEFAULT_THRESHOLD, OperatingPoint, write_operating_point
from kwsops.ml.spotting import ClipScores
from tests.helpers.comparison import make_comparison

NAMES = ["_silence_", "_unknown_", "catch", "gun"]


def probs(word: list[float], negative: list[float]) -> tuple[np.ndarray, np.ndarray]:
    rows = [[0.0, 1 - p, p, 0.0] for p in word] + [[0.0, 1 - p, 0.0, p] for p in negative]
    return np.array(rows), np.array([2] * len(word) + [1] * len(negative))


def test_the_threshold_comes_from_the_out_of_fold_scores_for_the_budget(tmp_path: Path) -> None:
    oof_probs, oof_true = probs([0.9, 0.8], [0.6] + [0.1] * 999)  # one hour at 3.6 s a clip
    oof = ClipScores.of(oof_probs, oof_true, NAMES, 3.6)
    (tmp_path / OOF_SCORES).write_text(json.dumps(oof.as_dict()))
    test_probs, test_true = probs([0.95, 0.7, 0.55, 0.3], [0.65, 0.2, 0.1])
    spot = spotting_summary([test_probs], test_true, NAMES, 3.6, tmp_path, budget=1.0)
    # one false alarm an hour allowed in one hour: the threshold sits just above 0.1
    assert 0.1 < spot["threshold"] < 0.11 and spot["threshold_from"] == "out-of-fold scores"
    assert spot["at_budget"]["miss_rate"] == 0.0 and spot["at_budget"]["false_alarms"] == 2
    strict = spotting_summary([test_probs], test_true, NAMES, 3.6, tmp_path, budget=0.5)
    assert 0.6 < strict["threshold"] < 0.61  # none allowed: above the highest negative
    assert strict["at_budget"]["miss_rate"] == 0.5 and strict["at_budget"]["false_alarms"] == 1
    assert strict["at_default"]["threshold"] == DEFAULT_THRESHOLD
    assert strict["at_budget"]["negative_minutes"] == 0.18  # 3 clips of 3.6 s


def test_without_oof_scores_the_kept_point_else_the_default(tmp_path: Path) -> None:
    test_probs, test_true = probs([0.95, 0.7], [0.65, 0.2])
    spot = spotting_summary([test_probs], test_true, NAMES, 2.6, tmp_path)
    assert (spot["threshold"], spot["threshold_from"]) == (DEFAULT_THRESHOLD, "default")
    write_operating_point(tmp_path, OperatingPoint(0.8, 2.0))
    spot = spotting_summary([test_probs], test_true, NAMES, 2.6, tmp_path)
    assert spot["threshold"] == 0.8 and spot["threshold_from"] == "kept for 2/h"
    # words only: nothing to count false alarms on
    words = np.array([[0.0, 0.0, 1.0, 0.0]])
    assert spotting_summary([words], np.array([2]), NAMES, 2.6, tmp_path) is None


def test_the_report_shows_the_figures_the_det_table_and_the_plot(tmp_path: Path) -> None:
    test_probs, test_true = probs([0.95, 0.7, 0.55, 0.3], [0.65, 0.2, 0.1])
    spot = spotting_summary([test_probs], test_true, NAMES, 2.6, None)
    data = make_comparison()  # the second revision (ws b16) has spotting figures, the best not
    data["revisions"][1]["spotting"] = json.loads(json.dumps(spot))
    comparison = Comparison.from_dict(data)
    png = plot_det(comparison.revisions, tmp_path / "det.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    comparison.plots.det = "plots/det.png"
    md = render_markdown(comparison)
    text = md.split("## Spotting")[1].split("\n## ")[0]
    assert "![DET curve](plots/det.png)" in text
    assert "| ws b16 | 0.500 (default) | 25.0% |" in text  # one of four words under 0.5
    assert "DET curve of ws b16" in text and "| 0.1 |" in text and "| 100 |" in text
    assert "aaaaaaa" not in text  # a revision without figures is not in the section
    assert f"miss @ {spot['budget']:g} FA/h" in md.split("## Summary")[1]
    console = Console(width=100, record=True)
    console.print(comparison_view(comparison))
    shown = console.export_text()
    assert "DET curve" in shown and "25.0" in shown
    data["revisions"][1]["spotting"] = None
    comparison = Comparison.from_dict(data)
    assert "## Spotting" not in render_markdown(comparison)
    assert "DET curve" not in Console(width=100, record=True).export_text()
    assert plot_det(comparison.revisions, tmp_path / "none.png") is None
