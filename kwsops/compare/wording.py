"""How the comparison's figures and names read, in every medium (Markdown, terminal, HTML):
revision names, percentages, intervals, sizes, the test split in a sentence.

Raw text: each renderer escapes it for its medium (:mod:`kwsops.text`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kwsops.audio.layout import speakers_phrase
from kwsops.text import plural

if TYPE_CHECKING:  # the console's dashboard imports short_names: no numpy, no pydantic for it
    from kwsops.compare.model import Interval, PairedTest, RevisionResult, TestFacts
    from kwsops.ml.spotting import SpottingFigures

CI = "95 % CI"
COMPARISON_TITLE = "# Comparison of model revisions"  # the first line of every Markdown report


def display_name(spec: str) -> str:
    """A spec as shown to people: a git sha cut to 10 characters."""
    match = re.match(r"^git:([0-9a-f]{40}):(.*)$", str(spec))
    return f"git:{match.group(1)[:10]}:{match.group(2)}" if match else str(spec)


def _short(spec: str, width: int) -> str:
    kind, _, rest = str(spec).partition(":")
    if kind == "workspace":
        return "ws " + rest.replace("batch_", "b")
    if kind == "git":
        rev, _, batch = rest.rpartition(":")
        return f"{rev[:width]} {batch.replace('batch_', 'b')}"
    if kind == "clearml":
        return "cml " + rest.removeprefix("offline-")[:width]
    return str(spec)


def short_names(specs: list[str]) -> dict[str, str]:
    """Names that tell the compared revisions apart in a narrow column: ``ws b16``,
    ``57c50e6 b16``, ``cml 683b747``; a sha or task id grows only where two would read alike.
    Never a cut that makes two the same: the full names are in the report beside them."""
    specs = list(dict.fromkeys(str(s) for s in specs))
    for width in (7, 10, 16, 64):
        names = {spec: _short(spec, width) for spec in specs}
        if len(set(names.values())) == len(specs):
            return names
    return {spec: spec for spec in specs}


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def with_ci(stat: Interval) -> str:
    return f"{pct(stat.mean)} % ({pct(stat.low)}–{pct(stat.high)})"


def split_sentence(test: TestFacts) -> str:
    """Which test split the report used, in one sentence (two when its share landed far from
    test_size); raw text (it can hold a list's path or a speaker's name): escape it for the
    medium."""
    split = test.split
    kind, share = split.kind, split.test_size
    sized = f"test_size {share}, seed {split.seed}" if share else ""
    far = f" The {split.share_note}." if split.share_note else ""
    if kind == "official":
        return f"Test split: the official one, the clips {split.note or 'its list'} names."
    if kind == "speaker":
        return f"Test split: held-out speakers ({sized}), never heard in training.{far}"
    if kind == "clip":
        why = split.note or "speakers unknown"
        return (
            f"Test split: clip by clip ({sized}), {why}: test voices may also be in training.{far}"
        )
    return ""


def data_phrase(test: TestFacts) -> str:
    """``6 labels from 2 of the 16 speakers in the data set``, ``6 labels, speakers unknown``."""
    labels = plural(len(test.labels), "label")
    total = test.speakers if test.speakers_total is None else test.speakers_total
    if not total:
        return f"{labels}, {speakers_phrase(0)}"
    return f"{labels} from {test.speakers} of the {speakers_phrase(total)} in the data set"


def human_count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def p_text(paired: PairedTest | None) -> str:
    if not paired:
        return "best"
    return f"p = {paired.p_value:.3g}" + (" (significant)" if paired.significant else "")


def miss_text(rev: RevisionResult) -> str:
    """The summary's cell: the miss rate at the operating threshold, or – without one."""
    return "–" if rev.miss_rate is None else f"{rev.miss_rate:.1%}"


def rate_text(figures: SpottingFigures) -> str:
    """``2.1/h (95 % CI 0.3–7.4) over 38.2 min``."""
    rate, ci = figures.false_alarms_per_hour, figures.interval
    if rate is None:
        return "–"
    text = f"{rate:.1f}/h"
    if ci:
        text += f" (95 % CI {ci[0]:.1f}–{ci[1]:.1f})"
    return text + f" over {figures.negative_minutes:.1f} min"
