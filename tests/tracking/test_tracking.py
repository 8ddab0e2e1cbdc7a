"""ClearML tracking with the real SDK in offline mode: what lands in the session, on disk."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
import wave
import zipfile
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kwsops.tracking.importer import import_offline_sessions  # noqa: E402
from kwsops.tracking.index import (  # noqa: E402
    TaskRecord,
    append_record,
    fetch_artifacts,
    list_tasks,
    read_index,
)
from kwsops.tracking.setup import TrackingError, tracking_mode, write_config  # noqa: E402
from kwsops.tracking.tracker import Tracker, stage_task  # noqa: E402

SECRET = "fake-Secret-7f3a9c"
ARGV_SECRET = "argv-Secret-51be2d"


@pytest.fixture(autouse=True)
def no_clearml_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, no clearml.conf: the offline default, whatever this machine has."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in (
        "CLEARML_API_HOST",
        "CLEARML_WEB_HOST",
        "CLEARML_API_ACCESS_KEY",
        "CLEARML_API_SECRET_KEY",
        "CLEARML_CONFIG_FILE",
        "TRAINS_CONFIG_FILE",
        "CLEARML_OFFLINE_MODE",
        "CLEARML_CACHE_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def write_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x01" * 1600)
    return path


def session_events(session: Path) -> list[dict]:
    """metrics.jsonl: one JSON list of events per flush, one flush per line."""
    lines = (session / "metrics.jsonl").read_text().splitlines()
    return [event for line in lines if line.strip() for event in json.loads(line)]


def train(ws: Path, name: str, model: bytes, fail: bool = False) -> Tracker:
    (ws / "model.safetensors").write_bytes(model)
    with stage_task(ws, name, "training", {"batch_size": 16}, tags=["batch_16"]) as tracker:
        tracker.scalar("loss", "fold 0 train", 0.5, 0)
        tracker.artifact("fold_0", ws / "model.safetensors")
        if fail:
            raise ValueError("fold 0 diverged")
    return tracker


def test_stage_logs_params_metrics_plots_audio_artifacts_offline(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir((tmp_path / "cwd").mkdir() or tmp_path / "cwd")
    model = os.urandom(4096)
    (ws / "model.safetensors").write_bytes(model)
    png = tmp_path / "durations.png"
    fig = plt.figure()
    plt.hist([1.0, 1.2, 2.0])
    fig.savefig(png)
    hooks = sys.excepthook, sys.exit, signal.getsignal(signal.SIGTERM)
    environ = dict(os.environ)
    params = {"batch_size": 32, "lr": 0.001, "audio": {"sample_rate": 16000}}
    with stage_task(ws, "train model", "training", params, tags=["batch_32"]) as tracker:
        for epoch in range(3):
            tracker.scalar("loss", "fold 0 train", 1.0 / (epoch + 1), epoch)
            tracker.scalar("accuracy", "fold 0 val", str(0.5 + epoch / 10), epoch)  # csv text
        tracker.single("average accuracy", 0.7)
        tracker.log_params({"epochs": 3}, name="cli")
        tracker.figure("duration histogram", png)
        png.unlink()  # the caller's temp folder goes away at once: the upload must not care
        tracker.figure("sample waveforms", fig)
        tracker.audio("raw", "yes", write_wav(tmp_path / "clip.wav"))
        tracker.artifact("fold_0", ws / "model.safetensors")
        tracker.text("an explicit line")
        print("console line from the stage")
    plt.close(fig)

    assert tracker.mode == "offline" and tracker.web_url is None
    session = tracker.session
    assert session is not None and session.is_relative_to(ws / ".kwsops" / "clearml")
    task = json.loads((session / "task.json").read_text())
    assert (task["name"], task["type"], task["project_name"]) == ("train model", "training", "KWS")
    assert "batch_32" in task["tags"]
    hyper = task["hyperparams"]
    assert hyper["General"]["batch_size"]["value"] == "32"
    assert hyper["General"]["audio/sample_rate"]["value"] == "16000"
    assert hyper["cli"]["epochs"]["value"] == "3"
    assert hyper["properties"]["outcome"]["value"] == "completed"

    events = session_events(session)
    loss = [(e["iter"], e["value"]) for e in events if e.get("metric") == "loss"]
    assert loss == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert any(e.get("variant") == "fold 0 val" and e["iter"] == 2 for e in events)
    assert any(e.get("metric") == "Summary" and e["value"] == 0.7 for e in events)
    media = {e["metric"]: Path(e["url"]) for e in events if e["type"] == "training_debug_image"}
    assert set(media) == {"duration histogram", "sample waveforms", "raw"}
    assert all(path.is_file() and path.is_relative_to(session) for path in media.values())
    assert not any(e["type"] == "plot" for e in events)  # matplotlib not auto-bound

    (artifact,) = task["execution"]["artifacts"]
    assert artifact["key"] == "fold_0" and Path(artifact["uri"]).read_bytes() == model
    console = (session / "log.jsonl").read_text()
    assert "console line from the stage" in console and "an explicit line" in console
    with zipfile.ZipFile(session.with_name(session.name + ".zip")) as zf:
        assert {"task.json", "metrics.jsonl", "log.jsonl"} <= set(zf.namelist())
    assert (sys.excepthook, sys.exit, signal.getsignal(signal.SIGTERM)) == hooks
    assert dict(os.environ) == environ  # nothing leaks into child processes
    assert not list((tmp_path / "cwd").iterdir()) and not (tmp_path / "home").exists()
    (record,) = list_tasks(ws)
    assert record.status == "completed" and record.values == {"average accuracy": 0.7}
    assert record.params["cli"] == {"epochs": 3}


def test_stages_in_one_process_list_newest_first_and_fetch_models(ws: Path, tmp_path: Path) -> None:
    first_model, second_model = os.urandom(2048), os.urandom(2048)
    first = train(ws, "train model batch_16", first_model)
    with stage_task(ws, "validation", "testing", {}) as other:
        other.single("accuracy", 0.9)
    second = train(ws, "train model batch_16 fold_1", second_model)
    assert len({first.task_id, other.task_id, second.task_id}) == 3

    records = list_tasks(ws, "train model")
    assert [r.task_id for r in records] == [second.task_id, first.task_id]
    assert [r.task_id for r in list_tasks(ws, "train model", limit=1)] == [second.task_id]
    assert [r.name for r in list_tasks(ws, None)][1] == "validation"
    assert records[1].params == {"batch_size": 16} and records[1].tags == ["batch_16"]

    (ws / "model.safetensors").write_bytes(b"the workspace moved on")
    fetched = fetch_artifacts(ws, first.task_id, tmp_path / "rev")
    assert fetched["fold_0"].read_bytes() == first_model
    assert fetched["fold_0"].is_relative_to(tmp_path / "rev" / "fold_0")
    assert first.session is not None
    shutil.rmtree(first.session)  # only the zip is left: still fetchable
    assert fetch_artifacts(ws, first.task_id, tmp_path / "z")["fold_0"].read_bytes() == first_model
    with pytest.raises(TrackingError, match="offline-nope"):
        fetch_artifacts(ws, "offline-nope", tmp_path / "x")
    with pytest.raises(TrackingError, match=other.task_id):
        fetch_artifacts(ws, other.task_id, tmp_path / "x")  # a task without artifacts


def test_failed_stage_keeps_its_outcome(ws: Path) -> None:
    with pytest.raises(ValueError, match="diverged"):
        train(ws, "train model", b"partial", fail=True)
    (record,) = list_tasks(ws)
    assert record.status == "failed" and "fold 0 diverged" in (record.error or "")
    task = json.loads((Path(record.session or "") / "task.json").read_text())
    assert task["hyperparams"]["properties"]["outcome"]["value"] == "failed"
    assert "failed" in task["tags"]


def test_forked_worker_gets_its_own_task(ws: Path, tmp_path: Path) -> None:
    parent = train(ws, "train model", b"parent")
    out = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:  # luigi --workers 2 runs each task in a forked child like this one
        code = 1
        try:  # what a parent that used ClearML leaves: Task.init would return a no-op stub
            os.environ["CLEARML_PROC_MASTER_ID"] = f"{os.getppid()}:{parent.task_id}"
            child = train(ws, "train model", b"child")
            out.write_text(f"{child.mode} {child.task_id}")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    mode, child_id = out.read_text().split()
    assert mode == "offline" and child_id != parent.task_id
    records = {r.task_id: r for r in list_tasks(ws)}
    assert records[child_id].status == "completed"
    fetched = fetch_artifacts(ws, child_id, tmp_path / "child")
    assert fetched["fold_0"].read_bytes() == b"child"


def test_secrets_never_reach_the_session(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVC_PASSWORD", SECRET)
    monkeypatch.setattr(sys, "argv", [*sys.argv, f"--webdav-password={ARGV_SECRET}"])
    params = {"remote": f"https://user:{SECRET}@dav.example/kws", "batch_size": 8}
    with stage_task(ws, "prepare audio", "data_processing", params, tags=[SECRET]) as tracker:
        print(f"oops, a tool echoed {SECRET}")
        print(f"and again {SECRET}", file=sys.stderr)
        tracker.text(f"remote password is {SECRET}")
    session = tracker.session
    assert session is not None
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(session.with_name(session.name + ".zip")) as zf:
        zf.extractall(unzipped)
    console = (session / "log.jsonl").read_text()
    assert "a tool echoed ***" in console and "remote password is ***" in console  # masked
    for folder in (ws / ".kwsops", unzipped):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data, path
                assert ARGV_SECRET.encode() not in data, path


def test_tracker_overhead_is_recorded_per_stage(ws: Path) -> None:
    """The time ClearML adds to a stage (init + close) is kept in the task index."""
    walls = {}
    for index in range(3):
        tic = time.monotonic()
        with stage_task(ws, "make spectrogram", "data_processing", {"n": index}) as tracker:
            tracker.single("clips", index)
        walls[tracker.task_id] = time.monotonic() - tic
    recorded = {r.task_id: r.tracking_seconds for r in read_index(ws) if r.task_id in walls}
    assert recorded.keys() == walls.keys()
    for task_id, wall in walls.items():
        assert 0 < recorded[task_id] <= wall, (task_id, recorded[task_id], wall)


def test_import_without_a_server_says_what_to_do(ws: Path) -> None:
    train(ws, "train model", b"m")
    with pytest.raises(TrackingError) as error:
        import_offline_sessions(ws)
    message = str(error.value)
    assert "no ClearML server configured" in message and "CLEARML_API_HOST" in message
    assert "1 offline session(s)" in message and "\n" not in message


def test_mode_follows_credentials_and_an_unreachable_server_falls_back(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert tracking_mode(ws) == "offline"
    user_conf = tmp_path / "home" / "clearml.conf"
    user_conf.parent.mkdir(parents=True)
    user_conf.write_text('api { credentials { "access_key": "AK1", "secret_key": "" } }\n')
    assert tracking_mode(ws) == "offline"  # half a credential is none
    user_conf.write_text(
        'api { api_server: "http://127.0.0.1:9"\n credentials { "access_key": "AK1", '
        '"secret_key": "SK1" } }\n'
    )
    assert tracking_mode(ws) == "online"
    assert f'include file("{user_conf}")' in write_config(ws).read_text()
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    assert tracking_mode(ws) == "offline"
    monkeypatch.delenv("CLEARML_OFFLINE_MODE")
    user_conf.unlink()
    for name, value in [
        ("CLEARML_API_HOST", "http://127.0.0.1:9"),  # discard port: refused at once
        ("CLEARML_API_ACCESS_KEY", "AK2"),
        ("CLEARML_API_SECRET_KEY", "SK2"),
    ]:
        monkeypatch.setenv(name, value)
    assert tracking_mode(ws) == "online"
    with (
        caplog.at_level(logging.WARNING, logger="kwsops.tracking"),
        stage_task(ws, "validation", "testing", {}) as tracker,
    ):
        tracker.single("accuracy", 1.0)
    assert tracker.mode == "offline" and "unreachable" in caplog.text
    assert [r.task_id for r in list_tasks(ws, None)] == [tracker.task_id]  # the index still
    with pytest.raises(TrackingError, match="unreachable"):
        import_offline_sessions(ws)
    with pytest.raises(TrackingError, match="unreachable"):
        fetch_artifacts(ws, "a-server-task-id", tmp_path / "x")


def test_broken_clearml_never_fails_the_stage(
    ws: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "clearml", None)  # as if ClearML failed to import
    with (
        caplog.at_level(logging.WARNING, logger="kwsops.tracking"),
        stage_task(ws, "prepare audio", "data_processing", {"seed": 1}) as tracker,
    ):
        tracker.scalar("loss", "fold 0 train", 1.0, 0)
        tracker.artifact("manifest", ws / "missing.csv")
        ran = True
    assert ran and tracker.mode == "disabled" and tracker.task_id == ""
    assert "ClearML tracking disabled for stage 'prepare audio'" in caplog.text
    assert list_tasks(ws, None) == []


def test_fetch_refuses_artifact_names_that_leave_dest(ws: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"m")
    record = TaskRecord("offline-x", "train model", "training", "2024-01-01", "offline")
    record.artifacts = {"../escape": str(model)}
    append_record(ws, record)
    with pytest.raises(TrackingError, match="refusing artifact path '../escape'"):
        fetch_artifacts(ws, "offline-x", tmp_path / "dest")
    assert not (tmp_path / "escape").exists()
