"""kwsops.audio.layout: labels, speakers, noise and the official split from where files sit."""

from __future__ import annotations

import pytest

from kwsops.audio.layout import (
    LayoutError,
    check_layout,
    plan_layout,
    speaker_of,
    speakers_phrase,
)
from kwsops.config import LayoutSettings
from kwsops.exitcodes import BAD_CONFIG

STUDY = [
    "ML/Catch/catch_01.wav",
    "ML/Gun/gun_01.wav",
    "ML/Rock/rock_01.wav",
    "ML/Whatsapp/Catch/PTT-1.ogg",
    "ML/Whatsapp/ROCK/PTT-2.ogg",
    "ML/notes.txt",
]


def places(rel_paths: list[str], **settings) -> dict[str, tuple]:
    layout = plan_layout(rel_paths, LayoutSettings(**settings))
    return {rel: (p.kind, p.label, p.speaker) for rel, p in layout.places.items()}


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("catch/spk07__catch_012.ogg", ("catch", "spk07")),
        ("Whatsapp/catch/spk07__x.opus", ("catch", "spk07")),
        ("whatsapp/Gun/a__b__c.wav", ("Gun", "a")),
        ("catch/sub/no_speaker.wav", ("sub", None)),  # alone: sub holds the recording
        ("catch/__anon.wav", ("catch", None)),
        ("top.wav", (None, None)),
        ("Whatsapp/spk1__x.wav", (None, "spk1")),
        ("rock/Whatsapp/x.wav", ("rock", None)),
        ("right/bb05582b_nohash_3.wav", ("right", "bb05582b")),
    ],
)
def test_label_and_speaker_of_one_path(rel: str, expected: tuple) -> None:
    place = plan_layout([rel]).places[rel]
    assert (place.label, place.speaker) == expected


def test_containers_at_any_depth_and_any_case_are_not_labels() -> None:
    found = places(STUDY)
    assert {p[1] for p in found.values() if p[0] == "recording"} == {"Catch", "Gun", "Rock"}
    assert found["ML/notes.txt"] == ("other", None, None)
    layout = plan_layout(STUDY)
    assert layout.places["ML/Whatsapp/ROCK/PTT-2.ogg"].folder == "ML/Whatsapp/ROCK"
    assert layout.merged == {"Rock": ["ROCK"]}
    deeper = places(["data/set/ML/gun/a.wav", "data/set/ML/Whatsapp/GUN/b.ogg", "x/y/rock/c.wav"])
    assert {p[1] for p in deeper.values()} == {"gun", "rock"}


def test_labels_list_names_the_labels_in_any_case_and_lists_the_rest() -> None:
    layout = plan_layout(
        [*STUDY, "ML/Other/x.wav", "Catch/session1/y.wav"],
        LayoutSettings(labels=("catch", "GUN", "rock")),
    )
    labels = {rel: p.label for rel, p in layout.places.items() if p.kind == "recording"}
    assert labels["ML/Whatsapp/ROCK/PTT-2.ogg"] == "rock"
    assert labels["ML/Gun/gun_01.wav"] == "GUN"
    assert labels["Catch/session1/y.wav"] == "catch"  # sessions below a listed label
    other = layout.places["ML/Other/x.wav"]
    assert other.label is None and other.reason.startswith("not a label: ML/Other")
    assert layout.merged["rock"] == ["ROCK", "Rock"]


def test_first_spelling_met_is_the_display_name() -> None:
    found = places(["Rock/a.wav", "rock/b.wav", "Whatsapp/ROCK/c.ogg", "gun/d.wav"])
    assert {p[1] for p in found.values()} == {"Rock", "gun"}


def test_sessions_below_a_label_folder_that_holds_recordings_belong_to_it() -> None:
    found = places(["catch/a.wav", "catch/monday/b.wav", "gun/c.wav", "gun/monday/d.wav"])
    assert [p[1] for p in found.values()] == ["catch", "catch", "gun", "gun"]


@pytest.mark.parametrize(
    "files",
    [
        ["catch/monday/a.wav", "gun/monday/b.wav", "gun/tuesday/c.wav"],  # sessions
        ["alice/catch/a.wav", "bob/catch/b.wav", "bob/gun/c.wav"],  # speakers above
    ],
)
def test_one_label_name_in_sibling_folders_is_ambiguous_without_a_list(files: list) -> None:
    with pytest.raises(LayoutError, match="cannot tell whether .* list the labels") as caught:
        plan_layout(files)
    assert caught.value.exit_code == BAD_CONFIG
    labels = {
        p.label for p in plan_layout(files, LayoutSettings(labels=("catch", "gun"))).places.values()
    }
    assert labels == {"catch", "gun"}


def test_underscore_folders_noise_and_split_lists() -> None:
    files = [
        "left/aa_nohash_0.wav",
        "left/bb_nohash_0.wav",
        "right/aa_nohash_1.wav",
        "_background_noise_/white_noise.wav",
        "_background_noise_/README.md",
        "_old/left/cc_nohash_0.wav",
        "testing_list.txt",
        "validation_list.txt",
    ]
    texts = {
        "testing_list.txt": "left/aa_nohash_0.wav\nright/aa_nohash_1.wav\n",
        "validation_list.txt": "left/bb_nohash_0.wav\nleft/aa_nohash_0.wav\n",
    }
    layout = plan_layout(files, read_text=texts.get)
    kinds = {rel: p.kind for rel, p in layout.places.items()}
    assert kinds["_background_noise_/white_noise.wav"] == "noise"
    assert kinds["testing_list.txt"] == kinds["validation_list.txt"] == "list"
    assert layout.places["_old/left/cc_nohash_0.wav"].reason.startswith("not a label: folder _old")
    splits = {rel: p.split for rel, p in layout.places.items() if p.kind == "recording"}
    assert splits["left/aa_nohash_0.wav"] == "test"  # in both lists: the test split wins
    assert splits["left/bb_nohash_0.wav"] == "validation"
    assert layout.lists == {"testing_list.txt": 2, "validation_list.txt": 2}
    nested = plan_layout(
        ["sc/testing_list.txt", "sc/up/a_nohash_0.wav", "sc/go/b_nohash_0.wav"],
        read_text=lambda rel: "up/a_nohash_0.wav\n",
    )
    assert nested.places["sc/up/a_nohash_0.wav"].split == "test"


def test_speaker_pattern_on_the_name_or_the_path() -> None:
    name = LayoutSettings(speaker_pattern=r"^(?P<speaker>[a-z]+)-")
    assert places(["Rock/alice-1.wav"], **name.as_dict())["Rock/alice-1.wav"][2] == "alice"
    assert places(["Rock/Alice-1.wav"], **name.as_dict())["Rock/Alice-1.wav"][2] is None
    path = r"^(?P<speaker>[^/]+)/"
    assert places(["bob/rock/x.wav"], speaker_pattern=path)["bob/rock/x.wav"][1:] == ("rock", "bob")
    assert speaker_of("rock/carol__x.wav") == "carol"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"speaker_pattern": "(?P<speaker>"}, "not a regular expression"),
        ({"speaker_pattern": "^([a-z]+)-"}, "no group named speaker"),
        ({"labels": ("Rock", "rock")}, "are the same label"),
        ({"labels": ("Whatsapp",)}, "container folder"),
        ({"labels": ("_background_noise_",)}, "cannot be a label"),
    ],
)
def test_unusable_settings_are_refused_with_exit_code_4(settings: dict, message: str) -> None:
    with pytest.raises(LayoutError, match=message) as caught:
        check_layout(LayoutSettings(**settings))
    assert caught.value.exit_code == BAD_CONFIG
    assert "\n" not in str(caught.value)


def test_speaker_count_is_said_one_way() -> None:
    assert speakers_phrase(0) == "speakers unknown"
    assert speakers_phrase(1) == "1 speaker"
    assert speakers_phrase(16) == "16 speakers"
