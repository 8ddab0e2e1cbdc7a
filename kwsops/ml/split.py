"""Who is held out: the test split and the cross-validation folds, and the checks that refuse
recordings no meaningful model can come from (the run then exits 4 before any training).

The test split is, in this order of preference: the official one (Speech Commands'
``testing_list.txt``, else ``validation_list.txt``), held-out speakers (stratified by label,
no speaker on both sides), or clip by clip when no two speakers are named. The folds keep
speakers apart the same way, and fall back to clip by clip, saying so, when the training split
has fewer speakers than folds. Everything here works on labels, speakers and ids only, never on
features, so it does not care how the spectrograms are stored.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kwsops import exitcodes
from kwsops.audio.layout import CONTAINER_NAMES
from kwsops.config import SplitSettings
from kwsops.keywords import is_word
from kwsops.ml.holdout import Holdout, NoHoldoutError, choose_holdout

FIX_LABELS = (
    "put each label's recordings in its own folder under data/input/ "
    "(container folders like ML/ or Whatsapp/ may hold them), or list the labels in "
    "luigi.cfg [Preprocess] labels"
)


class DataCheckError(ValueError):
    """The recordings cannot make a meaningful model (one label, too few clips, ...): the run
    exits 4 before training; the message names the cause and the fix."""

    exit_code = exitcodes.BAD_CONFIG


@dataclass(frozen=True)
class Clips:
    """What the split needs to know of each kept clip, in one order."""

    labels: np.ndarray  # int64 label index
    label_names: list[str]
    speakers: list[str]  # "" when unknown
    ids: list[str]
    official: list[str]  # "test", "validation" or "" (from the official split lists)
    folders: list[str]  # label folder as written, relative to data/input
    sources: list[str]  # input path, relative to data/input

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class SplitPlan:
    train: np.ndarray
    test: np.ndarray
    kind: str  # "official", "speaker" or "clip"
    note: str  # official: the list it came from; clip: why it is not by speaker
    share_note: str = ""  # when the test share lands far from test_size: the share and why

    def meta(self, settings: SplitSettings, lists: Sequence[str]) -> dict:
        return {
            "test_size": settings.test_size,
            "seed": settings.seed,
            "kind": self.kind,
            "note": self.note,
            "share_note": self.share_note,
            "lists": list(lists),
        }


def speaker_groups(speakers: list[str], ids: list[str]) -> np.ndarray:
    """Group number per clip: one group per speaker; a clip without a speaker is its own group."""
    keys = [f"speaker:{s}" if s else f"clip:{i}" for s, i in zip(speakers, ids, strict=True)]
    index = {k: n for n, k in enumerate(dict.fromkeys(keys))}
    return np.array([index[k] for k in keys], dtype=np.int64)


def _names(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_labels(clips: Clips, expected: Sequence[str], folds: int) -> None:
    """Refuse fewer than 2 labels, a listed label without recordings, and a label with fewer
    clips than the test split and ``folds`` folds need (one test clip, one per fold)."""
    counts = Counter(clips.labels.tolist())
    found = {name.casefold() for name in clips.label_names}
    missing = [name for name in expected if name.casefold() not in found]
    if missing:
        raise DataCheckError(
            f"[Preprocess] labels lists {_names(missing)}, but no kept recording is in such a "
            "folder: add recordings of it under data/input/, or remove it from the list"
        )
    if len([name for name in clips.label_names if is_word(name)]) < 2:
        raise DataCheckError(_one_label(clips))
    check_clips_for_folds({name: counts[i] for i, name in enumerate(clips.label_names)}, folds)


def check_clips_for_folds(clips_per_label: dict[str, int], folds: int) -> None:
    """Refuse a label with fewer clips than the test split and ``folds`` folds need (one test
    clip, one per fold). MakeSpectrograms checks it first; Train again, with the folds it trains
    (kwsops.pipeline.train), so a changed ``folds`` is checked whatever is up to date."""
    need = max(folds, 2) + 1
    # a word first: more of it can be recorded (_silence_ is made as many as the median word)
    short = sorted((not is_word(name), n, name) for name, n in clips_per_label.items() if n < need)
    if short:
        _, n, name = short[0]
        more = f" (and {len(short) - 1} more labels)" if len(short) > 1 else ""
        raise DataCheckError(
            f"label {name} has {n} clips{more}; the test split and {folds} folds need at least "
            f"{need} per label: record more, or lower [Train] folds"
        )


def _one_label(clips: Clips) -> str:
    words = [i for i, name in enumerate(clips.label_names) if is_word(name)]
    if not words:
        return f"no word found, only {_names(clips.label_names)}; {FIX_LABELS}"
    mine = [k for k, label in enumerate(clips.labels.tolist()) if label == words[0]]
    clips = Clips(
        labels=clips.labels[mine],
        label_names=clips.label_names,
        speakers=[clips.speakers[k] for k in mine],
        ids=[clips.ids[k] for k in mine],
        official=[clips.official[k] for k in mine],
        folders=[clips.folders[k] for k in mine],
        sources=[clips.sources[k] for k in mine],
    )
    name, folder = clips.label_names[words[0]], clips.folders[0] if clips.folders else ""
    where = f" from {folder}/" if folder and len(set(clips.folders)) == 1 else ""
    cause = f"only one label found ({name}, {len(clips)} clips{where}); a model needs at least 2"
    depth = folder.count("/") + 1
    direct = [s for s in clips.sources if folder and s.count("/") == depth]
    below = sorted(
        {
            next((p for p in s.split("/")[depth:-1] if p.casefold() not in CONTAINER_NAMES), "")
            for s in clips.sources
            if folder and s.startswith(folder + "/") and s.count("/") > depth
        }
        - {""}
    )
    if len(below) >= 2 and direct:  # e.g. a stray recording in a container like ML/
        return (
            f"{cause}; its recordings sit in sub-folders {_names(below)}: if those are the "
            f"labels, move the {len(direct)} recording(s) directly in {folder}/ into a label "
            "folder, or list the labels in luigi.cfg [Preprocess] labels"
        )
    return f"{cause}; {FIX_LABELS}"


def holdout_indices(
    labels: np.ndarray,
    groups: np.ndarray,
    settings: SplitSettings,
    *,
    label_names: Sequence[str] = (),
    group_names: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: stratified by label, no group (speaker) on both sides, every
    label on both sides, seeded; the test share nearest the requested one that allows
    (:func:`kwsops.ml.holdout.choose_holdout`). DataCheckError when no grouping can."""
    chosen = _holdout(labels, groups, settings, label_names, group_names, by_speaker=True)
    return chosen.train, chosen.test


def _holdout(
    labels: np.ndarray,
    groups: np.ndarray,
    settings: SplitSettings,
    label_names: Sequence[str],
    group_names: Sequence[str],
    *,
    by_speaker: bool,
) -> Holdout:
    try:
        return choose_holdout(labels, groups, settings.test_size, settings.seed,
                              label_names=label_names, group_names=group_names,
                              by_speaker=by_speaker)  # fmt: skip
    except NoHoldoutError as exc:
        raise DataCheckError(str(exc)) from None


def plan_split(clips: Clips, settings: SplitSettings, lists: Sequence[str] = ()) -> SplitPlan:
    """The test split of ``clips`` (see the module docstring); DataCheckError when a label would
    be missing from either side."""
    index = np.arange(len(clips))
    official = np.array(clips.official, dtype=object)
    test_mark = "test" if (official == "test").any() else "validation"
    known = sorted({s for s in clips.speakers if s})
    if (official == test_mark).any():
        test = index[official == test_mark]
        train = index[official != test_mark]
        test, train = _unlisted_non_words(clips, settings, official, test, train)
        named = ", ".join(n for n in lists if test_mark in n) or f"{test_mark}_list.txt"
        plan = SplitPlan(train, test, "official", named)
    elif len(known) >= 2:
        groups = speaker_groups(clips.speakers, clips.ids)
        _single_speaker_labels(clips, groups)
        chosen = _holdout(clips.labels, groups, settings, clips.label_names,
                          _group_names(clips, groups), by_speaker=True)  # fmt: skip
        plan = SplitPlan(chosen.train, chosen.test, "speaker", "", chosen.note)
    else:
        why = "speakers unknown" if not known else f"only one speaker named ({known[0]})"
        chosen = _holdout(clips.labels, np.arange(len(clips)), settings, clips.label_names,
                          clips.ids, by_speaker=False)  # fmt: skip
        plan = SplitPlan(chosen.train, chosen.test, "clip", why, chosen.note)
    _check_sides(clips, plan)
    return plan


def _group_names(clips: Clips, groups: np.ndarray) -> list[str]:
    """Each group's name in the order of its number: its speaker, or its clip's id."""
    first = {int(g): n for n, g in reversed(list(enumerate(groups.tolist())))}
    return [clips.speakers[first[g]] or clips.ids[first[g]] for g in sorted(first)]


def _unlisted_non_words(
    clips: Clips, settings: SplitSettings, official: np.ndarray, test: np.ndarray, train: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """An official split's lists name recordings, not the ``_silence_`` clips Preprocess makes
    (nor unknown speech added beside them): a class the lists leave wholly in train gives the
    test split its share, held out clip by clip (by speaker where named)."""
    for k, name in enumerate(clips.label_names):
        members = np.flatnonzero((clips.labels == k) & (official == ""))
        if (
            is_word(name)
            or len(members) < 2
            or np.isin(np.flatnonzero(clips.labels == k), test).any()
        ):
            continue
        groups = speaker_groups(
            [clips.speakers[i] for i in members], [clips.ids[i] for i in members]
        )
        _, held = holdout_indices(np.zeros(len(members), dtype=np.int64), groups, settings)
        test = np.sort(np.concatenate([test, members[held]]))
        train = np.setdiff1d(train, members[held])
    return test, train


def _single_speaker_labels(clips: Clips, groups: np.ndarray) -> None:
    for k, name in enumerate(clips.label_names):
        members = np.flatnonzero(clips.labels == k)
        if len(np.unique(groups[members])) < 2:
            speaker = clips.speakers[members[0]] if len(members) else "?"
            raise DataCheckError(
                f"label {name} was recorded by one speaker only ({speaker}); the test split "
                f"holds out whole speakers, so it needs {name} from at least 2: record it by "
                "another speaker"
            )


def _check_sides(clips: Clips, plan: SplitPlan) -> None:
    train = Counter(clips.labels[plan.train].tolist())
    test = Counter(clips.labels[plan.test].tolist())
    for k, name in enumerate(clips.label_names):
        if not train[k] or not test[k]:
            raise DataCheckError(
                f"label {name} has {train[k]} training and {test[k]} test clips after the "
                f"{plan.kind} split; it needs clips on both sides: record more of it"
            )


def word_mask(labels: Sequence[int] | np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """Per clip: True for one of the user's words, False for ``_unknown_`` and ``_silence_``."""
    return np.array([is_word(label_names[int(k)]) for k in labels], dtype=bool)


def _word_groups(groups: np.ndarray, words: Sequence[bool] | np.ndarray | None) -> np.ndarray:
    """The groups the folds must keep apart: the words' (a generated ``_silence_`` clip names
    no speaker, so each is a group of its own; counted, they would hide too few speakers)."""
    if words is None:
        return groups
    words = np.asarray(words, dtype=bool)
    return groups[words] if words.any() else groups


def fold_groups(
    speakers: list[str],
    ids: list[str],
    folds: int,
    words: Sequence[bool] | np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Groups for the folds, and a note when they fall back to clip by clip: fewer speaker
    groups among the training split's words (``words``: a mask per clip; None: every clip is
    a word) than folds."""
    groups = speaker_groups(speakers, ids)
    n_groups = len(np.unique(_word_groups(groups, words)))
    if n_groups >= folds:
        return groups, ""
    known = _known_speakers(speakers, words)
    fix = f"set [Train] folds = {n_groups}" if n_groups >= 2 else "name the speakers"
    note = (
        f"the training split has {known} speakers, fewer than {folds} folds: the folds hold out "
        f"clips, not speakers, so validation voices are also trained on; record more speakers "
        f"or {fix} to keep them apart"
    )
    return np.arange(len(ids), dtype=np.int64), note


def _known_speakers(speakers: list[str], words: Sequence[bool] | np.ndarray | None) -> int:
    mask = [True] * len(speakers) if words is None or not np.any(words) else list(words)
    return len({s for s, w in zip(speakers, mask, strict=True) if s and w})


def clip_folds_phrase(
    speakers: list[str],
    ids: list[str],
    folds: int,
    words: Sequence[bool] | np.ndarray | None = None,
) -> str:
    """The fall-back of :func:`fold_groups` in a few words, for a run's lines and the report:
    ``folds clip by clip: 5 training speakers for 6 folds``; "" when the folds keep speakers
    apart."""
    if not fold_groups(speakers, ids, folds, words)[1]:
        return ""
    known = _known_speakers(speakers, words)
    if not known:
        return f"folds clip by clip: training speakers unknown for {folds} folds"
    word = "speaker" if known == 1 else "speakers"
    return f"folds clip by clip: {known} training {word} for {folds} folds"


def fold_indices(
    labels: np.ndarray,
    speakers: list[str],
    ids: list[str],
    folds: int,
    seed: int,
    label_names: Sequence[str] = (),
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """``folds`` (train, val) index pairs, stratified by label, speakers apart when the words
    have enough (``label_names`` tell the words from ``_unknown_`` and ``_silence_``; without
    them every label is a word), else clip by clip, seeded; and the fallback note ("" when
    none)."""
    from sklearn.model_selection import StratifiedGroupKFold

    if folds < 2:
        raise DataCheckError(f"[Train] folds = {folds}: cross-validation needs at least 2")
    labels = np.asarray(labels)
    counts = np.bincount(labels) if len(labels) else np.zeros(1, dtype=int)
    if counts.max() < folds:
        raise DataCheckError(
            f"{folds} folds need at least {folds} training clips of a label, the most any label "
            f"has is {counts.max()}: record more, or lower [Train] folds"
        )
    words = word_mask(labels, label_names) if len(label_names) else None
    groups, note = fold_groups(speakers, ids, folds, words)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        pairs = splitter.split(np.zeros(len(labels)), labels, groups)
        return [(np.sort(tr), np.sort(va)) for tr, va in pairs], note
