"""Where a recording sits says what it is: its label, its speaker, noise, or the official split.

The rules (docs/ARCHITECTURE.md "Speakers and labels"), for paths relative to data/input:

- A folder whose name starts with ``_`` is not a word. Recordings under ``_unknown_`` (any
  case, any layout below it) are unknown speech, the class ``_unknown_``
  (:mod:`kwsops.keywords`). Recordings under one with "noise" in its name (Speech Commands'
  ``_background_noise_``) are noise for the training augmentation and the ``_silence_`` class;
  recordings under any other are listed as not under a label.
- With ``[Preprocess] labels`` and ``unknown_words = true`` (Speech Commands' convention), a
  recording in a folder the list does not name is unknown speech too.
- ``testing_list.txt`` and ``validation_list.txt`` name the official split, one path per line,
  relative to the list's own folder (Speech Commands keeps them at its root).
- The label folder. With ``[Preprocess] labels``: the deepest folder on the path that names a
  listed label, in any case. Without: the shallowest folder on the path that holds a recording
  itself; the folders above it hold only folders (containers, like the original study's
  ``ML/``). A folder named ``Whatsapp`` (any case) is always a container. Sub-folders below a
  label folder that holds recordings itself belong to it. Labels match case-insensitively;
  each has one display name: the listed spelling, else the first met walking the folders top
  down (shallower first, then by name).
- Without a list, one label name in two different folders at the same depth (``alice/catch``
  and ``bob/catch``, or ``catch/s1`` and ``gun/s1``) is ambiguous: either could be the labels.
  That is refused (:class:`LayoutError`, the run exits 4) with the fix: list the labels.
- A path with a dot-entry on it (a file or folder whose name, blanks stripped, starts with
  ``.``: ``.DS_Store``, ``.hidden/``, ``...``, `` ..``) is skipped: listed with the reason
  (``hidden: folder '.hidden' starts with a dot``), never a label, a recording or a split list. DVC
  versions such files with the rest of data/input, so the manifest lists them too.
- The speaker: ``[Preprocess] speaker_pattern`` when set (a regular expression with a group
  named ``speaker``, searched in the file name, or in the whole relative path when the pattern
  holds a ``/``); else ``<speaker>__<rest>`` or Speech Commands' ``<speaker>_nohash_<n>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from kwsops import exitcodes
from kwsops.config import AUDIO_EXTENSIONS, WHATSAPP_DIR, LayoutSettings
from kwsops.keywords import UNKNOWN
from kwsops.text import one_line

CONTAINER_NAMES = frozenset({WHATSAPP_DIR.casefold()})
SPLIT_LISTS = {"testing_list.txt": "test", "validation_list.txt": "validation"}
NOISE_WORD = "noise"
NOHASH = re.compile(r"^(?P<speaker>[^_/]+)_nohash_\d+")
SPEAKERS_UNKNOWN = "speakers unknown"
DEFAULT_LAYOUT = LayoutSettings()


class LayoutError(ValueError):
    """``[Preprocess] labels`` or ``speaker_pattern`` cannot be used, or without a labels list
    the label folders are ambiguous: the run exits 4; the message names the fix."""

    exit_code = exitcodes.BAD_CONFIG


@dataclass(frozen=True)
class Placement:
    """What one input file is. ``kind``: ``recording`` (a label's or, with ``reason``, none),
    ``noise`` (a background-noise recording), ``list`` (an official split list), ``hidden``
    (under a dot-entry, with ``reason``) or ``other``."""

    kind: str
    label: str | None = None
    folder: str | None = None  # the label folder as written, relative to data/input
    speaker: str | None = None
    split: str = ""  # "test" or "validation" when an official split list names the file
    reason: str = ""  # why a recording has no label


@dataclass(frozen=True)
class Layout:
    places: dict[str, Placement]
    merged: dict[str, list[str]] = field(default_factory=dict)  # label -> other spellings
    lists: dict[str, int] = field(default_factory=dict)  # split list -> files it names


def is_supported(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def compile_speaker_pattern(pattern: str) -> re.Pattern | None:
    """The compiled ``speaker_pattern`` (None when empty); LayoutError when unusable."""
    if not pattern:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise LayoutError(
            f"[Preprocess] speaker_pattern {pattern!r} is not a regular expression ({exc}); "
            r"fix it in luigi.cfg, e.g. ^(?P<speaker>[^-]+)-"
        ) from None
    if "speaker" not in compiled.groupindex:
        raise LayoutError(
            f"[Preprocess] speaker_pattern {pattern!r} has no group named speaker; "
            r"name the part that is the speaker, e.g. ^(?P<speaker>[^-]+)-"
        )
    return compiled


def check_labels(labels: Iterable[str]) -> dict[str, str]:
    """The listed labels by case-folded name; LayoutError for a name that cannot be a label."""
    found: dict[str, str] = {}
    for label in labels:
        name = str(label).strip()
        if not name or "/" in name or name.startswith(("_", ".")) or name in (".", ".."):
            raise LayoutError(
                f"[Preprocess] labels: {label!r} cannot be a label folder name; "
                "list folder names without '/', not starting with '_' or '.'"
            )
        if name.casefold() in CONTAINER_NAMES:
            raise LayoutError(
                f"[Preprocess] labels: {name!r} is a container folder, never a label; remove it"
            )
        if name.casefold() in found:
            raise LayoutError(
                f"[Preprocess] labels: {found[name.casefold()]!r} and {name!r} are the same "
                "label (labels match in any case); list it once"
            )
        found[name.casefold()] = name
    return found


def check_layout(settings: LayoutSettings) -> None:
    """LayoutError when ``[Preprocess] labels`` or ``speaker_pattern`` cannot be used."""
    check_labels(settings.labels)
    compile_speaker_pattern(settings.speaker_pattern)


def speaker_of(rel: str, pattern: re.Pattern | None = None) -> str | None:
    """The speaker a file's name (or path) names, or None."""
    name = PurePosixPath(rel).name
    if pattern is not None:
        match = pattern.search(rel if "/" in pattern.pattern else name)
        speaker = match.group("speaker") if match else None
        return speaker or None
    head, sep, _ = name.partition("__")
    if sep and head:
        return head
    match = NOHASH.match(name)
    return match.group("speaker") if match else None


def hidden_reason(rel: str) -> str:
    """Why ``rel`` is skipped as a dot-entry ("" when it is not one)."""
    parts = PurePosixPath(rel).parts
    for index, name in enumerate(parts):
        if name.strip().startswith("."):
            what = "folder " if index < len(parts) - 1 else ""
            return one_line(f"hidden: {what}{name!r} starts with a dot (kwsops skips dot-entries)")
    return ""


def _special_folder(folders: tuple[str, ...]) -> str | None:
    return next((name for name in folders if name.startswith("_")), None)


def _label_index(
    folders: tuple[str, ...],
    holders: set[tuple[str, ...]],
    listed: dict[str, str],
    recording: bool = True,
) -> int | None:
    """Which folder on the path is the label folder (see the module docstring). For a file
    that is not a recording, only a folder that holds recordings (or a listed one) counts."""
    candidates = [i for i, name in enumerate(folders) if name.casefold() not in CONTAINER_NAMES]
    if listed:
        matches = [i for i in candidates if folders[i].casefold() in listed]
        return matches[-1] if matches else None
    for i in candidates:
        if folders[: i + 1] in holders:
            return i
    return candidates[-1] if candidates and recording else None


def official_split(
    rel_paths: Iterable[str], read_text: Callable[[str], str | None]
) -> tuple[dict[str, str], dict[str, int]]:
    """(file -> "test"/"validation", list -> files it names) from the split lists found."""
    named: dict[str, str] = {}
    counts: dict[str, int] = {}
    for rel in sorted(rel_paths):
        path = PurePosixPath(rel)
        kind = SPLIT_LISTS.get(path.name.lower())
        text = read_text(rel) if kind else None
        if text is None:
            continue
        entries = [line.strip() for line in text.splitlines() if line.strip()]
        base = path.parent
        for entry in entries:
            target = (base / entry).as_posix().removeprefix("./")
            if named.get(target) != "test":  # in both lists: the test split wins
                named[target] = kind
        counts[rel] = len(entries)
    return named, counts


def _refuse_ambiguous(places: dict[str, Placement]) -> None:
    """LayoutError when one label name sits in two different folders at the same depth."""
    parents: dict[tuple[str, int], dict[str, str]] = {}
    for place in places.values():
        if not place.label or place.label == UNKNOWN:
            continue
        above = [p for p in place.folder.split("/")[:-1] if p.casefold() not in CONTAINER_NAMES]
        key = (place.label.casefold(), len(above))
        parents.setdefault(key, {}).setdefault("/".join(above), place.label)
    for where in parents.values():
        if len(where) > 1:
            (a, name), (b, _) = sorted(where.items())[:2]
            raise LayoutError(
                f"label folder {name} sits in both {a}/ and {b}/: kwsops cannot tell whether "
                f"{name} or the folders above it are the labels; list the labels in luigi.cfg "
                "[Preprocess] labels = [...]"
            )


def plan_layout(
    rel_paths: list[str],
    settings: LayoutSettings = DEFAULT_LAYOUT,
    read_text: Callable[[str], str | None] = lambda rel: None,
) -> Layout:
    """What every input file is (see the module docstring). ``read_text(rel)`` reads a split
    list (None when it cannot be read). A file that is not a recording keeps the label of the
    label folder it sits in, if any, so its rejection counts under that label."""
    listed = check_labels(settings.labels)
    pattern = compile_speaker_pattern(settings.speaker_pattern)
    hidden = {rel: reason for rel in rel_paths if (reason := hidden_reason(rel))}
    rel_paths = [rel for rel in rel_paths if rel not in hidden]
    split, lists = official_split(rel_paths, read_text)
    ordered = sorted(rel_paths)
    recordings = [rel for rel in ordered if is_supported(rel) and rel not in lists]
    holders = {
        PurePosixPath(rel).parts[:-1]
        for rel in recordings
        if not _special_folder(PurePosixPath(rel).parts[:-1])
    }
    places: dict[str, Placement] = {}
    display: dict[str, str] = {}
    spellings: dict[str, set[str]] = {}
    for rel in recordings:
        folders = PurePosixPath(rel).parts[:-1]
        special = _special_folder(folders)
        if special is not None:
            if NOISE_WORD in special.casefold():
                places[rel] = Placement("noise")
            elif special.casefold() == UNKNOWN:
                folder = "/".join(folders[: folders.index(special) + 1])
                speaker = speaker_of(rel, pattern)
                places[rel] = Placement("recording", UNKNOWN, folder, speaker, split.get(rel, ""))
            else:
                reason = f"not a label: folder {special} starts with _"
                places[rel] = Placement("recording", reason=one_line(reason))
            continue
        index = _label_index(folders, holders, listed)
        speaker = speaker_of(rel, pattern)
        if index is None and listed and folders and settings.unknown_words:
            where = "/".join(folders)
            places[rel] = Placement("recording", UNKNOWN, where, speaker, split.get(rel, ""))
            continue
        if index is None:
            reason = "no label folder"
            if listed and folders:
                reason = f"not a label: {'/'.join(folders)} names none of [Preprocess] labels"
            places[rel] = Placement("recording", speaker=speaker, reason=one_line(reason))
            continue
        folder = "/".join(folders[: index + 1])
        places[rel] = Placement("recording", folders[index], folder, speaker, split.get(rel, ""))
    if not listed:
        _refuse_ambiguous(places)
    # display names: the listed spelling, else the first met top down (shallower, then by name)
    found = sorted(
        (p.folder.count("/"), p.folder, p.label)
        for p in places.values()
        if p.label and p.label != UNKNOWN
    )
    display[UNKNOWN] = UNKNOWN
    for _, _, written in found:
        key = written.casefold()
        display.setdefault(key, listed.get(key, written))
        spellings.setdefault(key, set()).add(written)
    for rel, place in places.items():
        if place.label and place.label != UNKNOWN:
            places[rel] = replace(place, label=display[place.label.casefold()])
    for rel in ordered:
        if rel in lists:
            places[rel] = Placement("list")
        elif rel not in places:
            folders = PurePosixPath(rel).parts[:-1]
            index = None
            if not _special_folder(folders):
                index = _label_index(folders, holders, listed, recording=False)
            label = None if index is None else display.get(folders[index].casefold())
            places[rel] = Placement("other", label)
    places.update({rel: Placement("hidden", reason=reason) for rel, reason in hidden.items()})
    merged = {
        display[key]: sorted(found - {display[key]})
        for key, found in sorted(spellings.items())
        if found - {display[key]}
    }
    return Layout(places, merged, lists)


def speakers_phrase(count: int) -> str:
    """How many speakers the clips name, as every view says it (the report, the Data screen,
    `kwsops runs show`): ``16 speakers``, ``1 speaker``, or ``speakers unknown`` for none."""
    if not count:
        return SPEAKERS_UNKNOWN
    return f"{count} speaker" + ("" if count == 1 else "s")
