"""The headless pipeline end to end, through the real `kwsops run`, git, DVC and ClearML
(offline) in a temp workspace: outputs, the manifest of bad inputs, incremental reruns, and a
DVC round trip. Tests shrink the work (8 clips a label, 1-2 epochs, 2 folds), not the path.

The module runs the pipeline once; the tests that only read its outputs share that workspace,
and each test that runs again or deletes works on its own copy, so the tests pass alone and in
any order.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwsops.keywords import read_operating_point
from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs, read_status
from kwsops.stamps import STAMP_NAME, file_sha256
from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.workspaces import clone_workspace

pytestmark = pytest.mark.slow

RUN_ARGS = ("run", "--batch-sizes", "16", "--epochs", "1", "--folds", "2")
BAD_INPUTS = {
    "catch/zero__bytes.wav": "empty",
    "catch/cut__short.ogg": "unreadable",
    "gun/text__file.wav": "unreadable",
    "gun/quiet__clip.wav": "silent",
    "like/long__clip.flac": "too long",
    "like/phone__note.m4a": "unsupported type",
    "stray__file.wav": "no label",
}


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_bad_inputs(input_dir: Path, good_ogg: Path) -> None:
    rng = np.random.default_rng(0)
    (input_dir / "catch").mkdir(exist_ok=True)
    (input_dir / "catch/zero__bytes.wav").write_bytes(b"")
    data = good_ogg.read_bytes()
    (input_dir / "catch/cut__short.ogg").write_bytes(data[: len(data) // 3])
    (input_dir / "gun/text__file.wav").write_text("this is not audio\n")
    sf.write(input_dir / "gun/quiet__clip.wav", np.zeros(16000, dtype=np.float32), 16000)
    loud = 0.3 * rng.standard_normal(16000 * 4).astype(np.float32)
    sf.write(input_dir / "like/long__clip.flac", loud, 16000)
    (input_dir / "like/phone__note.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    sf.write(input_dir / "stray__file.wav", loud[:16000], 16000)


def last_run_families(ws: Workspace, event: str = "task_started") -> set[str]:
    run = list_runs(ws.runs_dir)[0]
    return {e["family"] for e in read_events(run.events).events if e["event"] == event}


def last_run_trained(ws: Workspace) -> set[str]:
    """Families that ran, up to the models (Validate reruns whenever its models change)."""
    return last_run_families(ws) - {"Validate"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, demo_source: Path, new_workspace):
    """The workspace after one run; read only (tests that change it take ``trained_copy``)."""
    ws = new_workspace(tmp_path_factory.mktemp("pipeline") / "ws")
    shutil.copytree(demo_source, ws.input_dir, dirs_exist_ok=True)
    write_bad_inputs(ws.input_dir, next(ws.input_dir.rglob("*.ogg")))
    raw_before = tree_hashes(ws.input_dir)
    result = run_cli(ws, *RUN_ARGS)
    return ws, result, raw_before


@pytest.fixture
def trained_copy(trained, tmp_path: Path):
    """A private copy of the run's workspace (its DVC cache and own remote included)."""
    ws, result, raw_before = trained
    return clone_workspace(ws.root, tmp_path / "ws"), result, raw_before


def test_run_produces_every_stage_and_a_git_revision(trained):
    ws, result, raw_before = trained
    assert tree_hashes(ws.input_dir) == raw_before, "raw recordings must never be modified"
    wavs = list(ws.output_dir.rglob("*.wav"))
    # 6 words x 8, 8 generated _silence_ (the median word's count), the 16 unknown recordings'
    # clips (sentences cut into several)
    per_class = {p.parent.name: 0 for p in wavs}
    for p in wavs:
        per_class[p.parent.name] += 1
    assert per_class.pop("_silence_") == 8 and per_class.pop("_unknown_") > 16
    assert per_class == {label: 8 for label in ("catch", "gun", "index", "like", "relax", "rock")}
    info = sf.info(wavs[0])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.frames == round(16000 * 2.6)
    for name in ("train.safetensors", "test.safetensors", "meta.json"):
        assert (ws.spec_dir / name).is_file()
    for fold in (0, 1):
        assert (ws.batch_dir(16) / f"fold_{fold}" / "model.safetensors").is_file()
    metrics = json.loads((ws.batch_dir(16) / "metrics.json").read_text())
    assert metrics["params"]["epochs"] == 1 and metrics["params"]["folds"] == 2
    # the operating point chosen on the out-of-fold scores, kept beside the folds
    point = read_operating_point(ws.batch_dir(16))
    assert point is not None and point.false_alarms_per_hour == 1.0
    assert metrics["operating_point"]["threshold"] == point.threshold
    assert (ws.batch_dir(16) / "oof_scores.json").is_file()
    for stage in ("input", "output", "spec_ds", "models"):
        assert (ws.data_dir / f"{stage}.dvc").is_file()
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=ws.root, capture_output=True, text=True, check=True
    ).stdout
    assert "batch sizes 16" in log and "epochs=1" in log
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ws.root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "data/models.dvc" in tracked and not any(p.endswith(".wav") for p in tracked)
    run = list_runs(ws.runs_dir)[0]
    assert read_status(run)["status"] == "ok"
    done = last_run_families(ws, "task_done")
    assert {
        "VersionInput",
        "Preprocess",
        "VersionOutput",
        "MakeSpectrograms",
        "VersionSpectrograms",
        "Train",
        "VersionModels",
    } <= done
    assert "TrainFold" not in done  # the folds of a batch size train together in Train
    assert "Preprocess" in result.stdout  # the summary table


def test_bad_inputs_are_listed_with_reasons_and_the_run_succeeds(trained):
    ws, _, _ = trained
    with open(ws.output_dir / "manifest.csv", newline="") as handle:
        rows = {row["source"]: row for row in csv.DictReader(handle)}
    generated = [s for s in rows if s.startswith("_silence_/generated-")]
    unknown = [s for s in rows if "_unknown_/" in s]
    assert len(generated) == 8 and len(unknown) == 16
    assert len(rows) == 48 + len(generated) + len(unknown) + len(BAD_INPUTS)
    for source, reason in BAD_INPUTS.items():
        assert rows[source]["status"] == "rejected", source
        assert reason in rows[source]["reason"], (source, rows[source]["reason"])
        assert "\n" not in rows[source]["reason"]
    kept = [row for row in rows.values() if row["status"] == "kept"]
    assert len(kept) == 48 + 8 + 16 and all(row["output"] for row in kept)  # a row per source


def test_rerun_does_no_work_and_changes_rerun_only_what_depends_on_them(trained_copy):
    ws, _, raw_before = trained_copy
    stacked = fold_outputs(ws, 16, 2)  # the first run's: its folds trained together
    run_cli(ws, *RUN_ARGS)
    assert last_run_families(ws) == set()
    assert tree_hashes(ws.input_dir) == raw_before, "linked into the DVC cache, bytes unchanged"
    if '"hardlink' in (ws.root / ".dvc" / "config.local").read_text():  # ext4: hard links
        linked = ws.input_dir / "catch" / "cut__short.ogg"  # linked into the cache, read-only
        assert linked.stat().st_nlink == 2 and linked.stat().st_mode & 0o222 == 0
    assert len(last_run_families(ws, "task_up_to_date")) == 1  # only the target is checked

    run_cli(ws, "run", "--batch-sizes", "16", "--epochs", "2", "--folds", "2", "--fold-tasks")
    assert last_run_trained(ws) == {"TrainFold", "Train", "VersionModels"}
    assert fold_outputs(ws, 16, 2) == stacked  # the same files and fields in both modes

    clip = sorted(ws.input_dir.glob("*/*.wav"))[0]
    audio, rate = sf.read(clip)
    edited = clip.with_name(f"{clip.stem}.edit.wav")  # a new file (editors save so): the old
    sf.write(edited, audio * 0.5, rate, subtype=sf.info(clip).subtype)  # one is a cache link
    edited.replace(clip)
    run_cli(ws, "run", "--batch-sizes", "16", "--epochs", "2", "--folds", "2")
    assert last_run_trained(ws) == {
        "VersionInput",
        "Preprocess",
        "VersionOutput",
        "MakeSpectrograms",
        "VersionSpectrograms",
        "Train",
        "VersionModels",
    }
    run_cli(ws, "run", "--batch-sizes", "16", "--epochs", "2", "--folds", "2", "--fold-tasks")
    assert last_run_families(ws) == set(), "folds trained together are done for fold tasks"


def fold_outputs(ws: Workspace, batch_size: int, folds: int) -> dict:
    """What each fold folder holds, by name and field (not value), and the run log's epochs."""
    found: dict = {}
    for fold in range(folds):
        folder = ws.batch_dir(batch_size) / f"fold_{fold}"
        metrics = json.loads((folder / "metrics.json").read_text())
        with (folder / "history.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        stamp = json.loads((folder / STAMP_NAME).read_text())
        found[fold] = (
            sorted(p.name for p in folder.iterdir()),
            sorted(metrics),
            (metrics["fold"], metrics["batch_size"], metrics["epochs_run"] == len(rows)),
            sorted(stamp),
        )
    log = list_runs(ws.runs_dir)[0].log.read_text()
    found["log"] = sorted(set(re.findall(rf"batch {batch_size} fold \d+ epoch", log)))
    return found


def test_dvc_pull_restores_identical_files(trained_copy):
    ws, _, _ = trained_copy
    stages = ("input", "output", "spec_ds", "models")
    before = {stage: tree_hashes(ws.data_dir / stage) for stage in stages}
    for stage in stages:
        shutil.rmtree(ws.data_dir / stage)
    shutil.rmtree(ws.root / ".dvc" / "cache")
    subprocess.run([tool("dvc"), "pull", "-q"], cwd=ws.root, check=True, capture_output=True)
    after = {stage: tree_hashes(ws.data_dir / stage) for stage in stages}
    assert after == before
    run_cli(ws, *RUN_ARGS)  # the params the workspace was trained with
    assert last_run_families(ws) == set(), "pulled data is complete: nothing reruns"


def session_events(session: Path) -> list[dict]:
    lines = (session / "metrics.jsonl").read_text().splitlines()
    return [event for line in lines if line.strip() for event in json.loads(line)]


def test_each_stage_is_an_offline_clearml_task_with_what_it_logged(trained):
    from kwsops.tracking.index import list_tasks

    ws, _, _ = trained
    tasks = {t.name: t for t in reversed(list_tasks(ws.root, None))}  # newest of each name
    expected = {"prepare audio": "data_processing", "make spectrogram": "data_processing",
                "train model": "training", "validation": "testing"}  # fmt: skip
    assert set(expected) <= set(tasks)
    for name, task_type in expected.items():
        record = tasks[name]
        assert record.mode == "offline" and record.status == "completed", record
        session = Path(record.session)
        assert session.is_relative_to(ws.state_dir / "clearml")
        task = json.loads((session / "task.json").read_text())
        assert (task["name"], task["type"], task["project_name"]) == (name, task_type, "KWS")
        assert task["hyperparams"]["General"], f"{name} logged no params"
    prepare = tasks["prepare audio"]
    hyper = json.loads((Path(prepare.session) / "task.json").read_text())["hyperparams"]
    assert hyper["General"]["audio/sample_rate"]["value"] == "16000"
    assert (Path(prepare.artifacts["manifest"])).read_bytes() == (
        ws.output_dir / "manifest.csv"
    ).read_bytes()
    kinds = {e["metric"] for e in session_events(Path(prepare.session))
             if e["type"] == "training_debug_image"}  # fmt: skip
    assert {"duration histogram", "sample waveforms", "raw", "processed"} <= kinds  # audio too

    train = tasks["train model"]
    assert "batch_16" in train.tags and train.params["epochs"] == 1
    events = session_events(Path(train.session))
    series = {e["variant"] for e in events if e.get("metric") == "loss"}
    assert {"fold 0 train", "fold 0 val", "fold 1 train", "fold 1 val"} <= series
    assert {"fold_0", "fold_1"} <= set(train.artifacts)
    model = ws.batch_dir(16) / "fold_0" / "model.safetensors"
    assert Path(train.artifacts["fold_0"]).read_bytes() == model.read_bytes()
