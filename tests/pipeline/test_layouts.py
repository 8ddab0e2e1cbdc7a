"""Your own recordings, in every layout the field uses, through the real pipeline (`kwsops run`,
git, DVC, ClearML offline): the labels, speakers and split it finds, as meta.json, the manifest,
the report and `kwsops runs show` state them, and the refusal of a tree no model can come from.

Tone "recordings" (tests/helpers/layouts.py), 1 epoch, 2 folds: the work shrinks, not the path.
"""

from __future__ import annotations

import configparser
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.layouts import (
    SC_SPEAKERS,
    SC_TEST,
    SC_VALIDATION,
    STUDY_LABELS,
    WORDS,
    mixed_case,
    one_label,
    original_study,
    speech_commands,
)

pytestmark = pytest.mark.slow

RUN = ("run", "--batch-sizes", "16", "--epochs", "1", "--folds", "2")
TO_SPECTROGRAMS = ("run", "--target", "MakeSpectrograms", "--folds", "2")


def meta(ws: Workspace) -> dict:
    return json.loads((ws.spec_dir / "meta.json").read_text())


def manifest(ws: Workspace) -> dict[str, dict]:
    with open(ws.output_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        return {row["source"]: row for row in csv.DictReader(handle)}


def last_events(ws: Workspace) -> list[dict]:
    return read_events(list_runs(ws.runs_dir)[0].events).events


def set_preprocess(ws: Workspace, **options: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ws.luigi_cfg)
    cfg["Preprocess"].update(options)
    with ws.luigi_cfg.open("w") as handle:
        cfg.write(handle)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory, new_workspace) -> tuple[Workspace, dict]:
    ws = new_workspace(tmp_path_factory.mktemp("speech") / "ws")
    lists = speech_commands(ws.input_dir)
    run_cli(ws, *RUN)
    return ws, lists


def test_speech_commands_words_speakers_and_the_official_split(speech):
    ws, lists = speech
    data = meta(ws)
    # _background_noise_ is not a label; its pieces and generated noise are _silence_
    assert data["labels"] == sorted([*WORDS, "_silence_"])
    assert data["split"]["kind"] == "official" and data["split"]["note"] == "testing_list.txt"
    # the lists name the words' test clips; _silence_, which they do not name, gets its share
    test_sources = data["test"]["sources"]
    silence = [s for s in test_sources if s.startswith(("_silence_/", "_background_noise_/"))]
    assert silence and len(silence) < len(test_sources)
    words = sorted(set(test_sources) - set(silence))
    assert words == sorted(lists["testing_list.txt"])
    assert set(data["test"]["speakers"]) - {""} == {SC_TEST}
    assert set(data["train"]["speakers"]) - {""} == set(SC_SPEAKERS) - {
        SC_TEST
    }  # validation trains
    assert SC_VALIDATION in data["train"]["speakers"]
    rows = manifest(ws)
    assert {rows[name]["status"] for name in lists} == {"list"}
    assert rows["_background_noise_/README.md"]["reason"] == "unsupported type .md"
    assert rows[lists["testing_list.txt"][0]]["split"] == "test"
    report = json.loads(ws.comparison_report.with_suffix(".json").read_text())
    assert report["test"]["speakers"] == 1 and report["test"]["speakers_total"] == 6
    assert report["test"]["split"]["kind"] == "official"
    md = ws.comparison_report.read_text()
    assert "from 1 of the 6 speakers in the data set" in md
    assert "Test split: the official one, the clips testing\\_list.txt names." in md
    best = report["revisions"][0]
    named = [row["speaker"] for row in best["per_speaker"] if row["speaker"] != "(unknown)"]
    assert named == [SC_TEST]  # and the _silence_ clips, which name none
    for wrong in best["misclassified"]:
        if not wrong["source"].startswith("_silence_/generated-"):  # generated: no input
            assert (ws.input_dir / wrong["source"]).is_file(), wrong  # a file a user can play
        assert wrong["true"] != wrong["predicted"]
    wrong = sum(1 - c for c in best["ensemble_correct"])  # on the words, as the accuracy
    assert len([w for w in best["misclassified"] if not w["true"].startswith("_")]) == wrong
    shown = run_cli(ws, "runs", "show", "last").stdout
    # 36 word clips, 12 generated _silence_ (the median word's) and 3 pieces of the noise
    assert "data: 51 clips, 3 labels, 6 speakers; test split: official, 8 clips" in shown


def test_background_noise_feeds_training_and_is_no_label(speech):
    ws, _ = speech
    with open(ws.output_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["source"].startswith("_background_noise_/")]
    recorded = [r for r in rows if r["source"].endswith(".wav") and r["status"] != "kept"]
    assert {r["status"] for r in recorded} == {"noise"} and not any(r["label"] for r in recorded)
    # their clip-length pieces are also _silence_ clips, a row each (7.5 s: 2, 4.0 s: 1)
    pieces = [r for r in rows if r["status"] == "kept"]
    assert len(pieces) == 3 and {r["label"] for r in pieces} == {"_silence_"}
    data = meta(ws)
    assert data["noise"]["pieces"] == 3  # 7.5 s and 4.0 s cut into 2.6 s pieces: 2 + 1
    assert (ws.spec_dir / "noise.safetensors").is_file()
    fold = json.loads((ws.batch_dir(16) / "fold_0" / "metrics.json").read_text())
    assert fold["recorded_noise_pieces"] == 3 and fold["fold_grouping"] == "speaker"
    done = {e["family"]: e for e in last_events(ws) if e["event"] == "task_done"}
    assert "2 noise recordings" in done["Preprocess"]["detail"]
    assert "3 labels, 6 speakers" in done["Preprocess"]["detail"]


def test_the_original_study_gives_its_six_labels(tmp_path: Path, new_workspace):
    ws = new_workspace(tmp_path / "ws")
    per_label = original_study(ws.input_dir)
    run_cli(ws, *TO_SPECTROGRAMS)
    data = meta(ws)
    # not ML, not Whatsapp; beside them generated _silence_, as many clips as the median word
    assert data["labels"] == sorted([*STUDY_LABELS, "_silence_"])
    assert data["split"]["kind"] == "clip" and data["split"]["note"] == "speakers unknown"
    silence = int(np.median(list(per_label.values())))
    total = sum(per_label.values()) + silence
    assert len(data["train"]["ids"]) + len(data["test"]["ids"]) == total
    rows = manifest(ws)
    assert rows["ML/Whatsapp/Rock/PTT-20230100-WA005.ogg"]["label"] == "Rock"
    assert rows["ML/Whatsapp/Rock/PTT-20230100-WA005.ogg"]["folder"] == "ML/Whatsapp/Rock"
    assert rows["ML/notes.txt"]["status"] == "rejected" and not rows["ML/notes.txt"]["label"]
    done = {e["family"]: e for e in last_events(ws) if e["event"] == "task_done"}
    assert "6 labels + _silence_, speakers unknown" in done["MakeSpectrograms"]["detail"]


def test_mixed_case_merges_and_a_speaker_pattern_names_the_speakers(tmp_path: Path, new_workspace):
    ws = new_workspace(tmp_path / "ws")
    speakers = mixed_case(ws.input_dir)
    set_preprocess(ws, speaker_pattern="^(?P<speaker>[a-z]+)-")
    run_cli(ws, *TO_SPECTROGRAMS)
    data = meta(ws)
    assert data["labels"] == ["Gun", "Rock", "_silence_"]  # not Rock, rock and ROCK
    assert data["split"]["kind"] == "speaker"
    # named speakers (generated _silence_ names none) stay on one side
    test, train = set(data["test"]["speakers"]) - {""}, set(data["train"]["speakers"]) - {""}
    assert test and train and not test & train
    assert test | train == set(speakers.values())
    rows = manifest(ws)
    assert {rows[s]["speaker"] for s in speakers} == set(speakers.values())
    assert {rows[s]["label"] for s in speakers if "ock" in s.lower()} == {"Rock"}
    assert rows["Whatsapp/ROCK/alice-0.wav"]["folder"] == "Whatsapp/ROCK"  # spelling kept
    done = {e["family"]: e for e in last_events(ws) if e["event"] == "task_done"}
    assert done["Preprocess"]["summary"]["merged_spellings"] == {
        "Gun": ["gun"],
        "Rock": ["ROCK", "rock"],
    }


def test_one_label_exits_4_before_any_fold_trains(tmp_path: Path, new_workspace):
    ws = new_workspace(tmp_path / "ws")
    one_label(ws.input_dir)
    result = run_cli(ws, *RUN, check=False)
    assert result.returncode == 4, result.stdout + result.stderr
    events = last_events(ws)
    started = {e["family"] for e in events if e["event"] == "task_started"}
    assert "MakeSpectrograms" in started and "TrainFold" not in started
    failed = [e for e in events if e["event"] == "task_failed"]
    assert [(e["family"], e.get("exit_code")) for e in failed] == [("MakeSpectrograms", 4)]
    error = failed[0]["error"]
    assert error.startswith("DataCheckError: only one label found (catch, 8 clips from catch/)")
    assert "list the labels in luigi.cfg [Preprocess] labels" in error and "\n" not in error
    assert "only one label found" in " ".join((result.stdout + result.stderr).split())
    assert not (ws.spec_dir / ".kwsops-stamp.json").exists()  # nothing that looks complete
