"""The comparison assembled: each revision's scores as a :class:`RevisionResult`, then the
ranking, the paired tests against the best, the parameters that differ, the test split's
facts and the notes, as one :class:`Comparison`.

Validate (:mod:`kwsops.pipeline.validate`) fetches the models, calls these, and writes what
they return.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kwsops.compare import evaluation as ev
from kwsops.compare.model import (
    Comparison,
    Method,
    Origin,
    PairedTest,
    RevisionResult,
    SplitFacts,
    TestFacts,
    Unseen,
    from_json,
)
from kwsops.compare.revisions import ResolvedRevision
from kwsops.compare.wording import display_name
from kwsops.keywords import DEFAULT_BUDGET, NO_UNKNOWN, UNKNOWN
from kwsops.text import clean_text

if TYPE_CHECKING:
    from kwsops.ml.features import SpecSplit


def score_revision(
    revision: ResolvedRevision,
    model_paths: list[Path],
    split: SpecSplit,
    output_dir: Path,
    train_sha: str,
    history: list[list[dict[str, Any]]],
    budget: float = DEFAULT_BUDGET,
) -> RevisionResult:
    """One revision's fold models scored on the test ``split`` (not ranked yet)."""
    scores = ev.evaluate_models(model_paths, split, output_dir, budget=budget)
    unseen = ev.unseen_check(scores.pop("trained_on"), split, train_sha)
    result = from_json(RevisionResult, {"spec": revision.spec, **scores})
    result.requested, result.kind = revision.requested, revision.kind
    result.origin = from_json(Origin, revision.origin)
    result.unseen = from_json(Unseen, unseen)
    result.history = history
    return result


def build_comparison(
    results: list[RevisionResult], meta: dict, split: SpecSplit, notes: list[str]
) -> Comparison:
    """The revisions ranked (best first), each tested against the best; ``notes`` first."""
    ranked = rank(results)
    for position, result in enumerate(ranked, start=1):
        result.rank = position
    paired_against_best(ranked)
    words = [] if UNKNOWN in split.label_names else [NO_UNKNOWN]
    return Comparison(
        created=datetime.now().isoformat(timespec="seconds"),
        test=test_facts(meta, split),
        method=Method(
            ev.N_BOOT, ev.SEED, ev.LEVEL, ev.EXACT_BELOW, ev.LATENCY_BATCH, ev.LATENCY_REPEATS
        ),
        revisions=ranked,
        differing_params=differing_params(ranked),
        notes=[*notes, *unseen_notes(ranked, split), *words],
    )


def rank(results: list[RevisionResult]) -> list[RevisionResult]:
    """Best first: mean fold accuracy, then ensemble accuracy, then macro F1 (stable)."""
    return sorted(
        results,
        key=lambda r: (-r.accuracy.mean, -r.ensemble_accuracy.mean, -r.macro_f1.mean),
    )


def differing_params(results: list[RevisionResult]) -> list[str]:
    """Param names whose value is not the same in every revision (missing counts as differing)."""
    names = sorted({name for r in results for name in r.params})
    return [n for n in names if len({repr(r.params.get(n)) for r in results}) > 1]


def paired_against_best(ranked: list[RevisionResult]) -> None:
    """McNemar on ensemble correctness against the best, for every other revision."""
    best = ranked[0]
    best_correct = np.asarray(best.ensemble_correct, bool)
    best.paired = None
    for other in ranked[1:]:
        test = ev.mcnemar(best_correct, np.asarray(other.ensemble_correct, bool))
        other.paired = PairedTest(against=best.spec, **test)


def test_facts(meta: dict, split: SpecSplit) -> TestFacts:
    """The test split as the report states it: clips, labels, speakers named in it and in the
    whole data set (0: unknown), and which split it is (kwsops.ml.split)."""
    known = {s for s in split.speakers if s}
    total = known | {s for s in meta["train"]["speakers"] if s}
    facts = meta["split"]
    kind = facts.get("kind") or ("speaker" if known else "clip")  # older meta.json
    return TestFacts(
        clips=len(split),
        labels=split.label_names,
        speakers=len(known),
        speakers_total=len(total),
        split=SplitFacts(
            kind=kind,
            note=facts.get("note", ""),
            share_note=facts.get("share_note", ""),
            lists=facts.get("lists", []),
            test_size=facts.get("test_size"),
            seed=facts.get("seed"),
        ),
    )


def display_name_of(rev: RevisionResult) -> str:
    """The revision's name for one line of text (a log line, an error, a note)."""
    return clean_text(display_name(rev.spec), 60)


def unseen_notes(ranked: list[RevisionResult], split: SpecSplit) -> list[str]:
    """A note for each revision whose test accuracy is not on clips and voices it never heard."""
    speakers = len({s for s in split.speakers if s})
    notes = [ev.unseen_note(display_name_of(rev), asdict(rev.unseen), speakers) for rev in ranked]
    notes += [
        f"{display_name_of(rev)}: {rev.fold_fallback}, so its fold validation voices were "
        "also trained on"
        for rev in ranked
        if rev.fold_fallback
    ]
    return [note for note in notes if note]


def short_last_notes(revisions: list[ResolvedRevision]) -> list[str]:
    """A note for each ``last:N`` that found fewer than N `train model` tasks."""
    counts: dict[str, int] = {}
    for revision in revisions:
        if revision.requested.startswith("last:"):
            counts[revision.requested] = counts.get(revision.requested, 0) + 1
    return [
        f"{spec} asked for {spec[5:]} `train model` tasks; only {found} were found"
        for spec, found in counts.items()
        if found < int(spec[5:])
    ]
