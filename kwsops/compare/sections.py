"""The comparison report's sections, in order: what each shows, decided once for every medium.

:func:`sections` turns a :class:`~kwsops.compare.model.Comparison` into the list the renderers
walk: :mod:`kwsops.compare.markdown` (reports/comparison_versions.md, and through it the HTML
page) and :mod:`kwsops.compare.terminal` (`kwsops report`, the console's figures). A section
the comparison has nothing for is left out here, not in each renderer; a renderer may leave a
section out of its medium (the terminal has no plots, so no method paragraph under them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from kwsops.compare.breakdown import SHOWN
from kwsops.compare.model import (
    Comparison,
    Gate,
    Method,
    Misclassified,
    RevisionResult,
    SpeakerRow,
    Spotting,
    TestFacts,
    ValidationTask,
)
from kwsops.compare.wording import short_names

Row = TypeVar("Row")


@dataclass(frozen=True)
class FirstRows(Generic[Row]):
    """The first SHOWN rows of a long list; the JSON keeps them all."""

    rows: list[Row]
    total: int

    @classmethod
    def of(cls, rows: list[Row] | None) -> FirstRows[Row] | None:
        """None for a report from before the list was kept (the section is left out)."""
        return None if rows is None else cls(rows[:SHOWN], len(rows))

    @property
    def more(self) -> int:
        """How many are not shown (0: all are)."""
        return self.total - len(self.rows)


@dataclass(frozen=True)
class Intro:
    test: TestFacts
    created: str
    best: RevisionResult
    gate: Gate
    notes: list[str]


@dataclass(frozen=True)
class Summary:
    revisions: list[RevisionResult]
    names: dict[str, str]  # spec -> short name
    budget: float | None  # the false-alarm budget of the spotting figures, if any


@dataclass(frozen=True)
class DifferingParams:
    """Only with two revisions or more; ``params`` empty when they share every one."""

    revisions: list[RevisionResult]
    names: dict[str, str]
    params: list[str]


@dataclass(frozen=True)
class Methods:
    method: Method
    accuracy_plot: str | None


@dataclass(frozen=True)
class Spotter:
    """The revisions that have spotting figures (at least one), each with them."""

    spotted: list[tuple[RevisionResult, Spotting]]
    names: dict[str, str]
    det_plot: str | None

    @property
    def first(self) -> Spotting:
        """The figures whose budget and clip length the section states."""
        return self.spotted[0][1]


@dataclass(frozen=True)
class TrackerTask:
    task: ValidationTask


@dataclass(frozen=True)
class RevisionDetail:
    rev: RevisionResult
    labels: list[str]
    differing: list[str]
    speakers: FirstRows[SpeakerRow] | None
    misclassified: FirstRows[Misclassified] | None


Section = Intro | Summary | DifferingParams | Methods | Spotter | TrackerTask | RevisionDetail


def sections(comparison: Comparison) -> list[Section]:
    revisions = comparison.revisions
    names = short_names([rev.spec for rev in revisions])
    spotted = [(rev, rev.spotting) for rev in revisions if rev.spotting]
    budget = spotted[0][1].budget if spotted else None
    found: list[Section] = [
        Intro(
            comparison.test, comparison.created, comparison.best, comparison.gate, comparison.notes
        ),
        Summary(revisions, names, budget),
    ]
    if len(revisions) >= 2:
        found.append(DifferingParams(revisions, names, comparison.differing_params))
    found.append(Methods(comparison.method, comparison.plots.accuracy))
    if spotted:
        found.append(Spotter(spotted, names, comparison.plots.det))
    if comparison.validation_task.task_id:
        found.append(TrackerTask(comparison.validation_task))
    found += [
        RevisionDetail(
            rev,
            comparison.test.labels,
            comparison.differing_params,
            FirstRows.of(rev.per_speaker),
            FirstRows.of(rev.misclassified),
        )
        for rev in revisions
    ]
    return found
