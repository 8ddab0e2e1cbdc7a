"""Every speaker pattern README.md shows works on the layout it shows it with: the real layout
planner gives the label and the speaker the README's table says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kwsops.audio.layout import plan_layout
from kwsops.config import LayoutSettings

README = Path(__file__).resolve().parents[2] / "README.md"
PATTERN = re.compile(r"`(?:speaker_pattern = )?([^`]*\(\?P<speaker>[^`]*)`")


def table_rows() -> list[tuple[str, str, tuple[str, ...], str, str]]:
    """(path, pattern, listed labels, label, speaker) of each layout row with a pattern."""
    rows = []
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 5 or "(?P<speaker>" not in cells[1]:
            continue
        path = re.search(r"`([^`]+\.(?:wav|ogg|flac|opus|mp3))`", cells[1])[1]
        pattern = PATTERN.search(cells[1])[1]
        listed = re.search(r"`labels = \[([^`]*)\]`", cells[1])
        labels = tuple(re.findall(r'"([^"]+)"', listed[1])) if listed else ()
        rows.append((path, pattern, labels, cells[2].strip("`"), cells[3].strip("`")))
    return rows


def test_every_pattern_the_readme_shows_is_in_a_layout_row():
    shown = set(PATTERN.findall(README.read_text(encoding="utf-8")))
    assert shown and shown == {row[1] for row in table_rows()}


@pytest.mark.parametrize(("path", "pattern", "labels", "label", "speaker"), table_rows())
def test_the_readme_speaker_patterns_find_the_speaker_of_their_layout(
    path, pattern, labels, label, speaker
):
    other = path.replace(speaker, "zed")  # a second speaker in the same tree
    layout = plan_layout([path, other], LayoutSettings(labels, pattern))
    place, second = layout.places[path], layout.places[other]
    assert (place.label, place.speaker) == (label, speaker)
    assert (second.label, second.speaker) == (label, "zed")
