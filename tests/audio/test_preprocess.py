"""The Preprocess stage on a small zoo of real good and bad recordings."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwsops.audio.manifest import (
    MANIFEST_COLUMNS,
    ManifestRow,
    read_columns,
    read_manifest,
    write_manifest,
)
from kwsops.audio.plots import duration_histogram, waveform_examples
from kwsops.audio.preprocess import PreprocessSummary, preprocess
from kwsops.config import AudioSettings

SETTINGS = AudioSettings()


def recording(rate: int, seconds: float = 0.5, lead: float = 0.8, tail: float = 0.8) -> np.ndarray:
    n = round(rate * seconds)
    phase = 2 * np.pi * np.cumsum(np.linspace(140.0, 180.0, n)) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 10)) * np.hanning(n) ** 0.5
    y = np.concatenate([np.zeros(round(lead * rate)), 0.4 * voiced, np.zeros(round(tail * rate))])
    return (y + np.random.default_rng(n).standard_normal(len(y)) * 1e-3).astype(np.float32)


def write(root: Path, rel: str, data: np.ndarray, rate: int, **kwargs: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, **kwargs)


GOOD = {
    "catch/spk1__catch_01.wav": {},
    "catch/spk1__catch_01.ogg": {"format": "OGG", "subtype": "VORBIS"},  # same stem as the wav
    "catch/sub/spk1__catch_01.wav": {},  # same name, deeper folder
    "Whatsapp/catch/spk1__catch_01.wav": {},  # same name, WhatsApp export
    "Whatsapp/catch/spk2__voice.opus": {"format": "OGG", "subtype": "OPUS"},
    "gun/spk2__gun_01.flac": {},
    "gun/spk3__gun_02.mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III"},
    "WHATSAPP/gun/spk3__gun_03.WAV": {},
    "rock/no_speaker.wav": {"subtype": "PCM_24"},
}
REJECTED = {
    "catch/empty.wav": "empty file",
    "catch/text.wav": "unreadable: Format not recognised",
    "catch/cut_header.wav": "unreadable: ",
    "gun/cut.flac": "unreadable: ",
    "gun/silent.wav": "silent: peak -inf dBFS",
    "gun/quiet.wav": "silent: peak -",
    "rock/too_long.wav": "too long: ",
    "rock/click.wav": "too short: ",
    "rock/memo.m4a": "unsupported type .m4a",
    "rock/README": "unsupported type (no extension)",
    "loose.wav": "no label folder",
    "Whatsapp/loose.opus": "no label folder",
}
SILENCE_CLIPS = 3  # generated _silence_ clips: as many as the median word (catch 5, gun 3, rock 1)
# dot-entries: versioned by DVC like the rest, so listed, each with why it is skipped
HIDDEN = {
    "catch/.DS_Store": "hidden: '.DS_Store' starts with a dot",
    ".hidden/catch/x.wav": "hidden: folder '.hidden' starts with a dot",
    "gun/.secret.wav": "hidden: '.secret.wav' starts with a dot",
    ".../catch/y.wav": "hidden: folder '...' starts with a dot",
    "..x/gun/z.wav": "hidden: folder '..x' starts with a dot",
    " ../w.wav": "hidden: folder ' ..' starts with a dot",  # not a label named " .."
}


def make_inputs(root: Path) -> None:
    for index, (rel, kwargs) in enumerate(GOOD.items()):
        rate = (16000, 44100, 48000, 22050)[index % 4]
        if kwargs.get("subtype") == "OPUS":
            rate = 48000
        data = recording(rate, seconds=0.4 + 0.05 * index)
        if index % 2:
            data = np.stack([data, 0.5 * data], axis=1)
        write(root, rel, data, rate, **kwargs)
    good = recording(16000)
    (root / "catch/empty.wav").write_bytes(b"")
    (root / "catch/text.wav").write_text("this is not audio\n")
    write(root, "catch/cut_header.wav", good, 16000)
    (root / "catch/cut_header.wav").write_bytes((root / "catch/cut_header.wav").read_bytes()[:30])
    write(root, "gun/cut.flac", np.tile(good, 3), 16000)
    flac = (root / "gun/cut.flac").read_bytes()
    (root / "gun/cut.flac").write_bytes(flac[: len(flac) // 2])
    write(root, "gun/silent.wav", np.zeros(16000, np.float32), 16000)
    write(root, "gun/quiet.wav", good / np.abs(good).max() * 10 ** (-60 / 20), 16000)
    t = np.arange(round(3.2 * 16000)) / 16000
    write(root, "rock/too_long.wav", (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    click = np.zeros(16000, np.float32)
    click[8000:8040] = 0.8
    write(root, "rock/click.wav", click, 16000)
    (root / "rock/memo.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    (root / "rock/README").write_text("labels are folders\n")
    write(root, "loose.wav", good, 16000)
    write(root, "Whatsapp/loose.opus", good, 16000, format="OGG", subtype="OPUS")
    for rel in HIDDEN:
        write(root, rel, good, 16000, format="WAV")


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("zoo")
    make_inputs(root / "input")
    before = tree(root / "input")
    calls: list[tuple[int, int]] = []
    summary = preprocess(
        root / "input",
        root / "out2",
        SETTINGS,
        workers=2,
        progress=lambda done, total, detail="": calls.append((done, total)),
    )
    single = preprocess(root / "input", root / "out1", SETTINGS, workers=1)
    return {
        "root": root,
        "before": before,
        "summary": summary,
        "single": single,
        "calls": calls,
        "rows": {row.source: row for row in read_manifest(root / "out2" / "manifest.csv")},
    }


def test_every_input_is_listed_once_dot_entries_with_why_they_are_skipped(zoo: dict) -> None:
    rows = zoo["rows"]
    # beside the inputs: the generated _silence_ clips, as many as the median word has (3)
    generated = {source for source in rows if source.startswith("_silence_/generated-")}
    assert len(generated) == SILENCE_CLIPS
    assert set(rows) - generated == set(GOOD) | set(REJECTED) | set(HIDDEN)
    for rel, reason in HIDDEN.items():
        row = rows[rel]
        assert (row.status, row.label, row.output) == ("rejected", None, None), rel
        assert row.reason.startswith(reason), (rel, row.reason)
    assert zoo["summary"].labels == ["_silence_", "catch", "gun", "rock"]  # no " .." label
    assert list(rows) == sorted(rows)
    header = (zoo["root"] / "out2/manifest.csv").read_text().splitlines()[0]
    assert header == ",".join(MANIFEST_COLUMNS)


def test_bad_inputs_are_rejected_with_a_one_line_reason(zoo: dict) -> None:
    rows, root = zoo["rows"], zoo["root"]
    for rel, reason in REJECTED.items():
        row = rows[rel]
        assert row.status == "rejected" and row.output is None, rel
        assert row.reason.startswith(reason), (rel, row.reason)
        assert "\n" not in row.reason and str(root) not in row.reason
        assert not row.reason.endswith(": ")  # the detail is there
    assert rows["rock/too_long.wav"].duration_in == pytest.approx(3.2)
    assert rows["rock/too_long.wav"].sample_rate_in == 16000


def test_kept_clips_have_the_output_format(zoo: dict) -> None:
    out = zoo["root"] / "out2"
    for rel in GOOD:
        row = zoo["rows"][rel]
        assert row.status == "kept" and row.reason == "", (rel, row.reason)
        info = sf.info(out / row.output)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            16000,
            1,
            "PCM_16",
            "WAV",
        )
        assert info.frames == SETTINGS.clip_samples
        clip, _ = sf.read(out / row.output, dtype="float32")
        loud = np.flatnonzero(np.abs(clip) > 0.05)
        word = 0.4 + 0.05 * list(GOOD).index(rel)
        assert (loud[-1] - loud[0]) / 16000 == pytest.approx(word, abs=0.12)  # word kept whole
        assert row.duration_out < word + 0.3 < row.duration_in  # silence trimmed
    all_outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    silence = [f"_silence_/generated-{k:04d}.wav" for k in range(SILENCE_CLIPS)]
    assert all_outputs == sorted([zoo["rows"][rel].output for rel in GOOD] + silence)


def test_whatsapp_merges_and_same_names_stay_distinct(zoo: dict) -> None:
    rows = zoo["rows"]
    assert rows["Whatsapp/catch/spk2__voice.opus"].label == "catch"
    assert rows["WHATSAPP/gun/spk3__gun_03.WAV"].label == "gun"
    same = [rel for rel in GOOD if rel.endswith("spk1__catch_01.wav") or rel.endswith(".ogg")]
    outputs = {rows[rel].output for rel in same}
    assert len(same) == 4 and len(outputs) == 4
    for name in outputs:
        assert name.startswith("catch/spk1__catch_01") and name.endswith(".wav")
    assert rows["rock/no_speaker.wav"].speaker is None
    assert {r.speaker for r in rows.values() if r.output} == {"spk1", "spk2", "spk3", None}


def test_raw_files_are_never_modified(zoo: dict) -> None:
    assert tree(zoo["root"] / "input") == zoo["before"]


def test_output_does_not_depend_on_worker_count(zoo: dict) -> None:
    one, two = tree(zoo["root"] / "out1"), tree(zoo["root"] / "out2")
    assert one == two and len(one) == len(GOOD) + SILENCE_CLIPS + 1


def test_summary_and_progress(zoo: dict) -> None:
    summary: PreprocessSummary = zoo["summary"]
    assert (summary.kept, summary.rejected) == (
        len(GOOD) + SILENCE_CLIPS,
        len(REJECTED) + len(HIDDEN),
    )
    assert summary.kept_per_label == {"_silence_": SILENCE_CLIPS, "catch": 5, "gun": 3, "rock": 1}
    assert summary.rejected_per_label == {"": 2 + len(HIDDEN), "catch": 3, "gun": 3, "rock": 4}
    assert summary.reasons["unreadable"] == 3 and summary.reasons["no label folder"] == 2
    assert summary.reasons["hidden"] == len(HIDDEN)
    assert summary.duration_out.count == len(GOOD)
    assert summary.duration_out.max < summary.duration_in.max
    assert summary.seconds > 0 and summary.as_dict()["kept"] == len(GOOD) + SILENCE_CLIPS
    total = len(GOOD) + len(REJECTED) + len(HIDDEN)
    assert zoo["calls"][-1] == (total, total)
    assert [done for done, _ in zoo["calls"]] == sorted(done for done, _ in zoo["calls"])


def test_manifest_reads_back_typed(zoo: dict, tmp_path: Path) -> None:
    rows = read_manifest(zoo["root"] / "out2/manifest.csv")
    kept = next(row for row in rows if row.kept)
    assert isinstance(kept.duration_in, float) and isinstance(kept.sample_rate_in, int)
    empty = next(row for row in rows if row.source == "catch/empty.wav")
    assert empty == ManifestRow(
        "catch/empty.wav", "catch", None, "rejected", "empty file", folder="catch"
    )
    bad = tmp_path / "manifest.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a kwsops manifest"):
        read_manifest(bad)
    with pytest.raises(FileNotFoundError, match="run Preprocess"):
        read_manifest(tmp_path / "missing.csv")


def test_manifest_reader_takes_old_reordered_and_guarded_manifests(tmp_path: Path) -> None:
    """The reader goes by column name: a manifest written before the folder and split columns,
    columns in another order, a cell guarded against spreadsheet formulas, a short row."""
    kept = ManifestRow(
        "a/b.wav",
        "a",
        None,
        "kept",
        output="a/b-1.wav",
        duration_in=1.25,
        duration_out=0.5,
        sample_rate_in=48000,
        channels_in=2,
    )
    rows = [
        ManifestRow("=cmd|' /C calc'!A0.wav", "-x", "@spk", "rejected", "+1 too short"),
        dataclasses.replace(kept, folder="A", split="test"),
    ]
    path = tmp_path / "manifest.csv"
    write_manifest(rows, path)
    assert read_manifest(path) == rows
    assert read_columns(path)["duration_in"] == [None, 1.25]
    # only the columns asked for, in the order asked, decoded and typed the same way
    some = read_columns(path, ("speaker", "source", "channels_in"))
    assert list(some) == ["speaker", "source", "channels_in"]
    assert some == {"speaker": ["@spk", None], "source": [rows[0].source, "a/b.wav"],
                    "channels_in": [None, 2]}  # fmt: skip
    with pytest.raises(ValueError, match="no manifest column \\['bogus'\\]"):
        read_columns(path, ("source", "bogus"))
    lines = path.read_text(encoding="utf-8").splitlines()
    table = [line.split(",") for line in lines]
    old = [cells[:-2] for cells in table]  # no folder, no split
    path.write_text("\n".join(",".join(c) for c in old) + "\n", encoding="utf-8")
    assert read_manifest(path)[1] == kept
    reordered = [cells[::-1] for cells in table]
    path.write_text("\n".join(",".join(c) for c in reordered) + "\n", encoding="utf-8")
    assert read_manifest(path) == rows
    path.write_text(lines[0] + "\nx.wav,x,,rejected\n", encoding="utf-8")
    assert read_manifest(path) == [ManifestRow("x.wav", "x", None, "rejected")]


def test_plots_are_png(zoo: dict, tmp_path: Path) -> None:
    rows = list(zoo["rows"].values())
    for path in (
        duration_histogram(rows, tmp_path / "durations.png"),
        waveform_examples(zoo["root"] / "out2", rows, tmp_path / "plots/waves.png"),
        waveform_examples(zoo["root"] / "out2", [], tmp_path / "none.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_input_folder(tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    summary = preprocess(tmp_path / "input", tmp_path / "out")
    assert (summary.kept, summary.rejected) == (0, 0)
    assert read_manifest(tmp_path / "out/manifest.csv") == []


def test_the_original_study_with_a_labels_list(tmp_path: Path) -> None:
    """With [Preprocess] labels the same six labels, spelled as listed; a folder not listed is
    not a label (without the list: tests/pipeline/test_layouts.py, through `kwsops run`)."""
    from kwsops.config import LayoutSettings
    from tests.helpers.layouts import STUDY_LABELS, original_study

    per_label = original_study(tmp_path / "input")
    other = tmp_path / "input" / "ML" / "Other"
    other.mkdir()
    (other / "x.wav").write_bytes((tmp_path / "input/ML/Gun/gun_00.wav").read_bytes())
    listed = tuple(name.lower() for name in STUDY_LABELS)
    summary = preprocess(tmp_path / "input", tmp_path / "out", layout=LayoutSettings(listed),
                         workers=1)  # fmt: skip
    words = {name: n for name, n in summary.kept_per_label.items() if name != "_silence_"}
    assert words == {name.lower(): n for name, n in per_label.items()}
    rows = {row.source: row for row in read_manifest(tmp_path / "out/manifest.csv")}
    assert (
        rows["ML/Other/x.wav"].reason == "not a label: ML/Other names none of [Preprocess] labels"
    )
    assert rows["ML/Whatsapp/Rock/PTT-20230100-WA005.ogg"].folder == "ML/Whatsapp/Rock"
    assert summary.merged_spellings["rock"] == ["Rock"]


def test_the_manifest_lists_every_file_dvc_versions(zoo: dict, tmp_path: Path) -> None:
    """What `dvc add data/input` versions and what the manifest lists are the same files."""
    import json
    import shutil
    import subprocess

    from kwsops.versioning.runner import tool

    shutil.copytree(zoo["root"] / "input", tmp_path / "input")
    for command in (["git", "init", "-q"], [tool("dvc"), "init", "-q"],
                    [tool("dvc"), "add", "-q", "input"]):  # fmt: skip
        subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    listing = next((tmp_path / ".dvc" / "cache").rglob("*.dir"))
    versioned = {entry["relpath"] for entry in json.loads(listing.read_text())}
    # every row but the generated _silence_ clips, which have no input file
    inputs = {source for source in zoo["rows"] if not source.startswith("_silence_/generated-")}
    assert versioned == inputs
