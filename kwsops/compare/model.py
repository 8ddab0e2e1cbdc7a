"""The comparison as typed data: what Validate measured, written to
reports/comparison_versions.json and read back by the report, `kwsops report`, the console and
the registry.

Plain dataclasses; pydantic (already the schema of the run files) converts them to and from
JSON, so the JSON is written from the model and read back into it. Every field a report from an
older kwsops may lack has a default: ``None`` for a whole section the old report did not have
(the renderers leave it out), so an old comparison_versions.json still loads and renders.
Unknown keys (from a newer kwsops) are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Field

from kwsops.ml.spotting import SpottingFigures
from kwsops.text import clean_text

SCHEMA = 1
JSON_NAME = "comparison_versions.json"
T = TypeVar("T")
# a field the JSON holds only when set (a git origin has no ClearML task)
IfSet = Annotated[T | None, Field(exclude_if=lambda value: value is None)]


@dataclass
class Interval:
    """A mean over fold models with its bootstrap interval (``per_fold``: accuracy only)."""

    mean: float
    low: float
    high: float
    per_fold: IfSet[list[float]] = None


@dataclass
class ClassRow:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class SpeakerRow:
    speaker: str
    clips: int
    accuracy: float
    ensemble_accuracy: float


@dataclass
class Misclassified:
    source: str
    clip: str
    speaker: str
    true: str
    predicted: str
    probability: float
    p_true: float


@dataclass
class PairedTest:
    """McNemar against the best: ``b`` clips only the best gets right, ``c`` only this one."""

    against: str
    b: int
    c: int
    p_value: float
    method: str

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


@dataclass
class DetPoint:
    threshold: float
    miss_rate: float | None
    false_alarms_per_hour: float | None


@dataclass
class Spotting:
    """The spotter's figures at the operating threshold for ``budget`` false alarms/h."""

    budget: float
    threshold: float
    threshold_from: str
    clip_seconds: float
    at_budget: SpottingFigures
    at_default: SpottingFigures
    det: list[DetPoint] = field(default_factory=list)
    det_text: list[DetPoint] = field(default_factory=list)  # read at DET_BUDGETS


@dataclass
class Origin:
    """How to open a revision: a workspace folder, a git commit, a ClearML task, a registry
    version (only what applies is set)."""

    path: IfSet[str] = None
    commit: IfSet[str] = None
    rev: IfSet[str] = None
    subject: IfSet[str] = None
    clearml_task: IfSet[str] = None
    mode: IfSet[str] = None
    web_url: IfSet[str] = None
    session: IfSet[str] = None
    tags: IfSet[list[str]] = None
    registry: IfSet[str] = None
    version: IfSet[str] = None


@dataclass
class Unseen:
    """Whether the revision's test accuracy is on clips and voices it never trained on."""

    status: str = "unknown"  # unseen | overlap | other split | unknown
    speakers: list[str] = field(default_factory=list)


@dataclass
class RevisionResult:
    """One revision scored on the test split, its place in the ranking, its plots."""

    spec: str
    accuracy: Interval
    macro_f1: Interval
    ensemble_accuracy: Interval
    per_class: list[ClassRow]
    confusion: list[list[float]]
    folds: int
    params: dict[str, Any]
    parameters: int
    file_bytes: int
    latency_ms: float
    requested: str = ""
    kind: str = ""
    origin: Origin = field(default_factory=Origin)
    rank: int = 0
    paired: PairedTest | None = None  # None: the best
    ensemble_correct: list[int] = field(default_factory=list)
    accuracy_on: str = ""  # "words": _unknown_ and _silence_ clips left out
    spotting: Spotting | None = None
    per_speaker: list[SpeakerRow] | None = None  # None: a report from before the section
    misclassified: list[Misclassified] | None = None
    features_recomputed: bool = False
    val_accuracy: list[float | None] = field(default_factory=list)
    fold_fallback: str = ""
    unseen: Unseen = field(default_factory=Unseen)
    history: list[list[dict[str, Any]]] = field(default_factory=list)  # per fold, per epoch
    plot: str = ""  # confusion PNG, relative to reports/
    curves_plot: str = ""

    @property
    def miss_rate(self) -> float | None:
        """The miss rate at the operating threshold (None without spotting figures)."""
        return self.spotting.at_budget.miss_rate if self.spotting else None


@dataclass
class SplitFacts:
    kind: str | None = None  # official | speaker | clip
    note: str = ""
    share_note: str = ""
    lists: list[str] = field(default_factory=list)
    test_size: float | None = None
    seed: int | None = None


@dataclass
class TestFacts:
    clips: int
    labels: list[str]
    speakers: int
    speakers_total: int | None = None  # None: a report from before it was counted
    split: SplitFacts = field(default_factory=SplitFacts)


@dataclass
class Method:
    n_boot: int
    seed: int
    level: float
    exact_below: int
    latency_batch: int
    latency_repeats: int


@dataclass
class Gate:
    fail_below: float = 0.0
    status: str = "off"  # off | passed | failed

    @classmethod
    def of(cls, fail_below: float, best_accuracy: float) -> Gate:
        """Off without ``fail_below``; failed when the best accuracy is under it."""
        if not fail_below:
            return cls(fail_below, "off")
        return cls(fail_below, "failed" if best_accuracy < fail_below else "passed")


@dataclass
class ValidationTask:
    task_id: str | None = None
    mode: str | None = None
    web_url: str | None = None
    session: str | None = None


@dataclass
class Plots:
    accuracy: str | None = None
    det: str | None = None


@dataclass
class Comparison:
    """Everything the reports show, best revision first."""

    created: str
    test: TestFacts
    method: Method
    revisions: list[RevisionResult]
    schema: int = SCHEMA
    differing_params: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: Plots = field(default_factory=Plots)
    gate: Gate = field(default_factory=Gate)
    validation_task: ValidationTask = field(default_factory=ValidationTask)

    @property
    def best(self) -> RevisionResult:
        return self.revisions[0]

    def revision(self, specs: list[str]) -> RevisionResult | None:
        """The revision known by any of ``specs`` (its spec or as it was requested)."""
        wanted = {s for s in specs if s}
        return next((r for r in self.revisions if {r.spec, r.requested} & wanted), None)

    def to_dict(self) -> dict:
        """The JSON form (``best`` kept beside the ranking for readers of the file)."""
        return {**to_json(self), "best": self.best.spec}

    @classmethod
    def from_dict(cls, data: object) -> Comparison:
        """Raises ValueError (pydantic's ValidationError is one) when ``data`` is not a
        comparison."""
        comparison = from_json(cls, data)
        if not comparison.revisions:
            raise ValueError("it compares no revision")
        return comparison


@cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def from_json(cls: type[T], data: object) -> T:
    """``data`` (as JSON holds it) as a ``cls`` of this module, nested parts typed too;
    ValueError when it does not fit."""
    return _adapter(cls).validate_python(data)


def to_json(value: object) -> dict:
    """A dataclass of this module as JSON-able data (nested parts too)."""
    return _adapter(type(value)).dump_python(value, mode="json")


class ReportError(ValueError):
    """No report to show, or it cannot be read; the message says what to run."""


def load_comparison(path: Path) -> Comparison | None:
    """The comparison beside a Markdown report (or at ``path`` if it is the JSON); None when
    there is none; :class:`ReportError` when it cannot be read as one."""
    source = Path(path) if Path(path).suffix == ".json" else Path(path).with_suffix(".json")
    if not source.is_file():
        return None
    try:
        return Comparison.from_dict(json.loads(source.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"{source}: not a kwsops comparison ({_reason(exc)}); run Validate again"
        ) from None


def _reason(exc: Exception) -> str:
    """The first thing wrong, in one line: ``revisions.0.accuracy: Field required``."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and errors():
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return clean_text(f"{where}: {first.get('msg', '')}" if where else first.get("msg"))
    return clean_text(str(exc) or type(exc).__name__)
