"""Which groups (speakers, or single clips) are held out for the test split.

A held-out set is good when every label has clips on both sides and its size is near the
requested share. StratifiedGroupKFold's folds are the first candidates, as they always were:
when one of them is good and near the share it is taken, so a data set that split well before
splits the same. Otherwise more candidates are tried (other fold counts, further seeded
shuffles, a greedy cover of the labels, and every subset when there are few groups) and the
good one nearest the share wins; the run is refused only when none is good, naming the labels
whose speakers cannot be on both sides. Everything is seeded: one seed, one split.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

# a first-choice fold this near the requested size (relative) is taken without a wider search
NEAR = 0.5
EXTRA_SEEDS = 4  # further seeded shuffles of StratifiedGroupKFold in the wider search
GREEDY_ORDERS = 8  # seeded orders of the greedy label cover
EXHAUSTIVE_GROUPS = 12  # up to this many groups, every subset is a candidate


class NoHoldoutError(ValueError):
    """No held-out set puts every label on both sides; the message names the labels and the
    speakers that keep it from doing so."""


@dataclass(frozen=True)
class Holdout:
    train: np.ndarray  # sorted clip indices
    test: np.ndarray
    note: str  # when the share lands far from the requested one: the share and why; else ""


def choose_holdout(
    labels: np.ndarray,
    groups: np.ndarray,
    test_size: float,
    seed: int,
    *,
    label_names: Sequence[str] = (),
    group_names: Sequence[str] = (),
    by_speaker: bool = True,
) -> Holdout:
    """The held-out clips (whole groups) nearest ``test_size`` of the clips with every label on
    both sides (see the module docstring). ``group_names`` name the groups in a refusal
    (speakers; ``by_speaker`` False: the groups are single clips); NoHoldoutError when no set
    of groups can."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    group_ids, group_of = np.unique(groups, return_inverse=True)
    label_ids, label_of = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(group_ids), len(label_ids)), dtype=np.int64)
    np.add.at(counts, (group_of, label_of), 1)
    target = test_size * len(labels)
    book = _Book(counts, target)

    first = _kfold_n_splits(labels, groups, test_size)
    for mask in _kfold_masks(labels, groups, group_of, len(group_ids), first, seed):
        book.add(mask)
    if book.best is None or abs(book.best_size - target) > NEAR * target:
        for mask in _wider_masks(labels, groups, group_of, counts, target, first, seed):
            book.add(mask)
    if book.best is None:
        names = list(label_names) or [str(k) for k in label_ids]
        raise NoHoldoutError(_refusal(book, counts, names, group_names, group_ids))
    in_test = book.best[group_of]
    index = np.arange(len(labels))
    test, train = index[in_test], index[~in_test]
    note = _share_note(len(test), len(labels), test_size, target, by_speaker)
    return Holdout(train, test, note)


class _Book:
    """The good candidate nearest the target (the first one on ties), and the candidate that
    fails the fewest labels (for the refusal)."""

    def __init__(self, counts: np.ndarray, target: float) -> None:
        self.counts, self.target, self.total = counts, target, counts.sum(axis=0)
        self.best: np.ndarray | None = None
        self.best_size = 0
        self.closest_failing: np.ndarray | None = None  # labels failing in the least bad one

    def add(self, mask: np.ndarray) -> None:
        test = mask.astype(np.int64) @ self.counts
        failing = (test == 0) | (test == self.total)
        if failing.any():
            if self.closest_failing is None or failing.sum() < self.closest_failing.sum():
                self.closest_failing = failing
            return
        size = int(test.sum())
        if self.best is None or abs(size - self.target) < abs(self.best_size - self.target):
            self.best, self.best_size = mask.copy(), size


def _kfold_n_splits(labels: np.ndarray, groups: np.ndarray, test_size: float) -> int:
    per_label = min(len(np.unique(groups[labels == k])) for k in np.unique(labels))
    return max(2, min(round(1 / test_size), per_label))


def _kfold_masks(
    labels: np.ndarray,
    groups: np.ndarray,
    group_of: np.ndarray,
    n_groups: int,
    n_splits: int,
    seed: int,
) -> Iterator[np.ndarray]:
    from sklearn.model_selection import StratifiedGroupKFold

    if n_splits > min(n_groups, np.unique(labels, return_counts=True)[1].max()):
        return  # sklearn refuses more folds than groups, or than the largest label's clips
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for _, test in folds.split(np.zeros(len(labels)), labels, groups):
            mask = np.zeros(n_groups, dtype=bool)
            mask[group_of[test]] = True
            yield mask


def _wider_masks(
    labels: np.ndarray,
    groups: np.ndarray,
    group_of: np.ndarray,
    counts: np.ndarray,
    target: float,
    first: int,
    seed: int,
) -> Iterator[np.ndarray]:
    n_groups = len(counts)
    rng = np.random.default_rng(seed)
    seeds = [seed, *rng.integers(0, 2**31 - 1, size=EXTRA_SEEDS).tolist()]
    top = min(n_groups, max(first, round(len(labels) / max(target, 1.0))) * 2)
    for shuffle_seed in seeds:
        for n_splits in range(2, top + 1):
            if (n_splits, shuffle_seed) != (first, seed):
                yield from _kfold_masks(labels, groups, group_of, n_groups, n_splits, shuffle_seed)
    for _ in range(GREEDY_ORDERS):
        mask = _greedy_cover(counts, target, rng.permutation(n_groups))
        if mask is not None:
            yield mask
    if n_groups <= EXHAUSTIVE_GROUPS:
        for bits in itertools.product((False, True), repeat=n_groups):
            yield np.array(bits)


def _greedy_cover(counts: np.ndarray, target: float, order: np.ndarray) -> np.ndarray | None:
    """Groups that give every label a test clip (the ones adding most uncovered labels first,
    fewer clips and then ``order`` on ties) while leaving each label a training clip; then more
    groups in ``order`` while they bring the size nearer ``target``. None when stuck."""
    total = counts.sum(axis=0)
    mask = np.zeros(len(counts), dtype=bool)
    test = np.zeros_like(total)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    while (test == 0).any():
        best = None
        for g in np.flatnonzero(~mask):
            after = test + counts[g]
            if (after >= total).any():
                continue
            gain = int(((test == 0) & (counts[g] > 0)).sum())
            key = (-gain, int(counts[g].sum()), rank[g])
            if gain and (best is None or key < best[0]):
                best = (key, g)
        if best is None:
            return None
        mask[best[1]] = True
        test = test + counts[best[1]]
    for g in order:
        after = test + counts[g]
        nearer = abs(after.sum() - target) < abs(test.sum() - target)
        if nearer and not mask[g] and not (after >= total).any():
            mask[g], test = True, after
    return mask


def _share_note(
    n_test: int, n_clips: int, test_size: float, target: float, by_speaker: bool
) -> str:
    if abs(n_test - target) <= NEAR * target:
        return ""
    why = "whole speakers are held out and every label" if by_speaker else "every label"
    return (
        f"test share {n_test / n_clips:.2f} ({n_test} of {n_clips} clips), not {test_size:g}: "
        f"{why} needs clips on both sides; no such split comes nearer"
    )


def _refusal(
    book: _Book,
    counts: np.ndarray,
    label_names: Sequence[str],
    group_names: Sequence[str],
    group_ids: np.ndarray,
) -> str:
    failing = book.closest_failing
    stuck = np.flatnonzero(failing) if failing is not None else np.arange(counts.shape[1])
    parts = []
    for k in stuck[:3]:
        holders = np.flatnonzero(counts[:, k])
        who = [group_names[g] if len(group_names) else str(group_ids[g]) for g in holders]
        shown = ", ".join(who[:4]) + (f" and {len(who) - 4} more" if len(who) > 4 else "")
        parts.append(f"{label_names[k]} (recorded only by {shown})")
    more = f" and {len(stuck) - 3} more" if len(stuck) > 3 else ""
    one = len(stuck) == 1
    return (
        "no choice of held-out speakers puts every label on both sides of the test split: "
        f"{'label' if one else 'labels'} {'; '.join(parts)}{more} cannot be on both sides "
        f"while the other labels are; record {'it' if one else 'each'} by one more speaker"
    )
