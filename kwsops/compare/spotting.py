"""Validate's spotter figures for one revision: misses and false alarms per hour on the test
split at the operating threshold, the DET curve, as numbers, text and a PNG.

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
    is_word,
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


def det_lines(spot: dict) -> list[str]:
    """The DET curve as a Markdown table (the console's report view shows it as text)."""
    lines = ["| false alarms / h (at most) | miss rate | threshold |", "|---:|---:|---:|"]
    for row in spot.get("det_text", []):
        miss = "–" if row["miss_rate"] is None else f"{row['miss_rate']:.1%}"
        lines.append(f"| {row['false_alarms_per_hour']:g} | {miss} | {row['threshold']:.3f} |")
    return lines


def rate_text(figures: dict) -> str:
    """``2.1/h (95 % CI 0.3–7.4) over 38.2 min``."""
    rate, ci = figures.get("false_alarms_per_hour"), figures.get("interval")
    if rate is None:
        return "–"
    text = f"{rate:.1f}/h"
    if ci:
        text += f" (95 % CI {ci[0]:.1f}–{ci[1]:.1f})"
    return text + f" over {figures['negative_minutes']:.1f} min"


def plot_det(revisions: list[dict], path: Path) -> Path | None:
    """Miss rate against false alarms per hour (log axis), one line per revision."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [rev for rev in revisions if rev.get("spotting")]
    if not shown:
        return None
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for rev in shown:
        points = [p for p in rev["spotting"]["det"] if p["false_alarms_per_hour"]]
        points.sort(key=lambda p: p["false_alarms_per_hour"])
        ax.step([p["false_alarms_per_hour"] for p in points],
                [100 * p["miss_rate"] for p in points], where="post",
                label=rev.get("short_name") or rev["spec"])  # fmt: skip
        at = rev["spotting"]["at_budget"]
        if at["false_alarms_per_hour"]:
            ax.plot([at["false_alarms_per_hour"]], [100 * at["miss_rate"]], "o", color="black")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (test negatives, clip level)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title("DET curve (dot: the operating threshold)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def has_non_words(label_names: list[str]) -> bool:
    return any(not is_word(name) for name in label_names)


def miss_text(rev: dict) -> str:
    """The summary's cell: the miss rate at the operating threshold, or – without one."""
    spot = rev.get("spotting")
    if not spot or spot["at_budget"]["miss_rate"] is None:
        return "–"
    return f"{spot['at_budget']['miss_rate']:.1%}"


def section_lines(revisions: list[dict], names: dict[str, str], det_plot: str | None) -> list[str]:
    """The report's spotting section: per revision the figures at its operating threshold
    and at DEFAULT_THRESHOLD, then the DET curve as a PNG and as a table each."""
    shown = [rev for rev in revisions if rev.get("spotting")]
    if not shown:
        return []
    first = shown[0]["spotting"]
    lines = [
        "## Spotting",
        "",
        f"Words missed, and false alarms per hour on the test split's `_unknown_` speech and "
        f"`_silence_` (each clip counted as {first['clip_seconds']:.1f} s of audio: a clip-level "
        f"estimate; 95 % exact Poisson intervals), at the threshold chosen for "
        f"{first['budget']:g} false alarm(s) per hour on the training folds' out-of-fold "
        f"scores, and at the default {DEFAULT_THRESHOLD:g}. A detection is the best word "
        "reaching the threshold; a hit needs it to be the clip's word.",
        "",
        "| revision | threshold | miss rate | false alarms | at "
        f"{DEFAULT_THRESHOLD:g}: miss | at {DEFAULT_THRESHOLD:g}: false alarms |",
        "|---|---:|---:|---|---:|---|",
    ]
    for rev in shown:
        spot = rev["spotting"]
        at, default = spot["at_budget"], spot["at_default"]
        lines.append(
            f"| {names.get(rev['spec'], rev['spec'])} | {spot['threshold']:.3f} "
            f"({spot['threshold_from']}) | {at['miss_rate']:.1%} | {rate_text(at)} | "
            f"{default['miss_rate']:.1%} | {rate_text(default)} |"
        )
    lines.append("")
    if det_plot:
        lines += [f"![DET curve]({det_plot})", ""]
    for rev in shown:
        lines += [f"DET curve of {names.get(rev['spec'], rev['spec'])} (test split, threshold "
                  "read off the test scores at each budget):", ""]  # fmt: skip
        lines += [*det_lines(rev["spotting"]), ""]
    return lines
