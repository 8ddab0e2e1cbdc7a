"""The console's non-UI parts: workspace monitor, dashboard rows, launcher, manifest summary,
the optional luigid source (a real luigid on 127.0.0.1), and the core/Textual boundary."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kwsops.runs.folder import RunPaths
from kwsops.runs.show import best_accuracy
from kwsops.runs.state import RunState
from kwsops.tui.launcher import Launcher, LaunchError, cancel_run
from kwsops.tui.readers.luigid import LuigidSource, scheduler_address
from kwsops.tui.readers.manifest import NO_LABEL, read_manifest
from kwsops.tui.readers.monitor import Monitor
from kwsops.tui.readers.rows import task_rows
from kwsops.workspace import Workspace
from tests.helpers.tui_workspace import RUN_ACTIVE, RUN_FAILED, RUN_OK, make_workspace, write_run

pytestmark = pytest.mark.timeout(120)
HOLD_LOCK = """\
import sys, time
from kwsops.runs.lock import WorkspaceLock
lock = WorkspaceLock(sys.argv[1])
lock.acquire(sys.argv[2], origin="cli")
print("held", flush=True)
time.sleep(60)
"""


def test_core_and_state_modules_never_import_textual() -> None:
    modules = [
        "kwsops.tui.readers.logindex",
        "kwsops.compare.discover",
        "kwsops.tui.readers.monitor",
        "kwsops.tui.readers.rows",
        "kwsops.tui.launcher",
        "kwsops.tui.readers.manifest",
        "kwsops.tui.readers.luigid",
    ]
    code = (
        f"import sys; import {', '.join(modules)}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'luigi', 'torch'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_monitor_history_and_active_run_by_lock(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", active=False)
    ws = Workspace.at(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(ws.lock_file), RUN_ACTIVE],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        write_run(root, RUN_ACTIVE, 1_700_010_800.0, status="running", stop_after=3, pid=holder.pid)
        snapshot = Monitor(ws).poll()
        assert snapshot.active and snapshot.focus.run_id == RUN_ACTIVE
        assert [r.run_id for r in snapshot.history] == [RUN_ACTIVE, RUN_FAILED, RUN_OK]
        states = {r.label: r.state for r in snapshot.rows}
        assert states["VersionOutput"] == "done" and states["MakeSpectrograms"] == "running"
        assert states["Validate"] == "pending"
    finally:
        holder.kill()
        holder.wait()
    snapshot = Monitor(ws).poll()  # the process died without writing its end: killed
    assert not snapshot.active and snapshot.focus.status == "killed"
    assert {r.label: r.state for r in snapshot.rows}["MakeSpectrograms"] == "killed"
    ok = next(r for r in snapshot.history if r.run_id == RUN_OK)
    # the best accuracy is the comparison's, never a fold's validation accuracy (0.842)
    assert ok.status == "ok" and ok.best_accuracy == pytest.approx(0.917) and ok.has_report


def test_monitor_reads_events_incrementally_and_survives_bad_files(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", active=False)
    monitor = Monitor(Workspace.at(root))
    first = monitor.poll()
    assert first.focus.run_id == RUN_FAILED and not first.active
    states = {r.label: r.state for r in first.rows}
    assert states["MakeSpectrograms"] == "failed" and states["Validate"] == "not run"
    failed_paths = RunPaths(root / "reports" / "runs" / RUN_FAILED)
    with open(failed_paths.events, "a") as handle:
        handle.write("{broken\n")
    failed_paths.status.write_text("{ not json")
    again = monitor.poll()
    assert again.errors and "bad event" in again.errors[-1]
    assert next(r for r in again.history if r.run_id == RUN_FAILED).status in ("failed", "unknown")


def test_rows_group_instances_and_mark_unfinished_tasks() -> None:
    state = RunState(run_id="r")
    for fold in (0, 1):
        task = f"TrainFold_{fold}"
        state.apply(
            {
                "event": "task_started",
                "task": task,
                "family": "TrainFold",
                "ts": 1.0,
                "params": {"batch_size": "16", "fold": str(fold)},
            }
        )
    state.apply(
        {
            "event": "task_done",
            "task": "TrainFold_0",
            "family": "TrainFold",
            "ts": 5.0,
            "duration": 4.0,
            "detail": "val acc 0.8",
        }
    )
    rows = task_rows(state, {"TrainFold_1": {"epoch": 3, "val_accuracy": 0.5}}, "running")
    labels = [r.label for r in rows]
    assert labels[labels.index("TrainFold ×2") + 1 :][:2] == ["bs 16 · fold 0", "bs 16 · fold 1"]
    summary = rows[labels.index("TrainFold ×2")]
    assert summary.state == "running" and summary.detail == "1/2 finished · 1 running"
    assert rows[labels.index("bs 16 · fold 1")].detail == "epoch 3 · val acc 0.500"
    ended = task_rows(state, {}, "cancelled")
    assert {r.label: r.state for r in ended}["bs 16 · fold 1"] == "cancelled"
    assert {r.label: r.state for r in ended}["Validate"] == "not run"
    assert best_accuracy({}, state.tasks.values()) is None
    assert best_accuracy({"best_accuracy": 0.9}, []) == 0.9


def test_launcher_starts_runs_and_reruns_as_their_own_processes(tmp_path: Path) -> None:
    from kwsops.runs.request import RunRequest

    root = make_workspace(tmp_path / "ws")
    ws = Workspace.at(root)
    echo = [sys.executable, "-c", "import sys; print(' '.join(sys.argv[1:]), file=sys.stderr)"]
    launcher = Launcher(ws, echo)
    started = launcher.start(RunRequest(batch_sizes=[16], epochs=2, folds=2), run_id="RID")
    assert started.process.wait(timeout=30) == 0
    argv = started.stderr_path.read_text().split()
    assert argv[:3] == ["run", "--batch-sizes", "16"]
    assert argv[-5:] == ["--run-id", "RID", "--origin", "tui", "--quiet"]
    again = launcher.rerun(RUN_FAILED, run_id="R2")
    assert again.process.wait(timeout=30) == 0
    assert again.stderr_path.read_text().split() == [
        "rerun", RUN_FAILED, "--run-id", "R2", "--origin", "tui", "--quiet"
    ]  # fmt: skip
    # neither made a run folder: each is reported once as a run that did not start
    failures = launcher.early_failures()
    assert len(failures) == 2 and "did not start" in failures[0]
    assert launcher.early_failures() == []
    with pytest.raises(LaunchError, match="not running"):
        cancel_run(ws, RUN_OK)


def test_manifest_summary(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", active=False)
    summary = read_manifest(root / "data" / "output" / "manifest.csv")
    assert (summary.total, summary.kept) == (39, 36)
    gun = next(s for s in summary.labels if s.label == "gun")
    assert (gun.kept, gun.rejected, len(gun.speakers)) == (6, 1, 3)  # speakers of kept clips
    assert (summary.label_count, summary.speakers) == (6, 3)
    assert summary.labels[-1].label == "(no label)"
    assert [r.reason for r in summary.rejected][0] == "no label folder"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a kwsops manifest"):
        read_manifest(bad)


def test_manifest_summary_agrees_with_the_rows_one_by_one(tmp_path: Path) -> None:
    """The summary gathers labels a column at a time; every figure is what walking the typed
    rows one by one gives: kept, noise, list and rejected rows, folder spellings, no label."""
    from kwsops.audio.manifest import ManifestRow, write_manifest
    from kwsops.audio.manifest import read_manifest as manifest_rows

    rows = []
    for n in range(300):
        label = ("gun", "Gun", "rock", None)[n % 4]
        status = ("kept", "kept", "rejected", "noise", "list")[n % 5]
        rows.append(ManifestRow(
            f"src/{n}.wav", None if status in ("noise", "list") else (label or "").lower() or None,
            f"spk{n % 7}" if n % 3 else None, status, "too short: 0.1 s" if status == "rejected"
            else "", f"out/{n}.wav" if status in ("kept", "noise") else None,
            None if n % 11 == 0 else 1 + n / 1000, 0.5 if status == "kept" else None,
            folder=label and f"ML/{label}",
        ))  # fmt: skip
    path = tmp_path / "manifest.csv"
    write_manifest(rows, path)
    summary = read_manifest(path)
    typed = manifest_rows(path)
    assert summary.lists == [r.source for r in typed if r.status == "list"]
    counted = [r for r in typed if r.status not in ("list", "noise")]
    for stats in summary.labels:
        mine = [r for r in counted if (r.label or NO_LABEL) == stats.label]
        kept = [r for r in mine if r.status == "kept"]
        assert (stats.kept, stats.rejected) == (len(kept), len(mine) - len(kept))
        assert stats.speakers == {r.speaker for r in kept if r.speaker}
        assert stats.durations_in == [r.duration_in for r in mine if r.duration_in is not None]
        assert stats.durations_out == [r.duration_out for r in kept if r.duration_out is not None]
        assert stats.spellings == {r.folder.rsplit("/", 1)[-1] for r in mine if r.folder}
    assert sum(s.total for s in summary.labels) == len(counted)
    noise = [r for r in typed if r.status == "noise"]
    assert (summary.noise.kept, summary.noise.rejected) == (len(noise), 0)
    assert [r.source for r in summary.rejected] == sorted(
        r.source for r in counted if r.status == "rejected"
    )


SLOW_TASK = """\
import sys, time, luigi
class Preprocess(luigi.Task):
    def output(self):
        return luigi.LocalTarget(sys.argv[2])
    def run(self):
        time.sleep(60)
luigi.build([Preprocess()], scheduler_host="127.0.0.1", scheduler_port=int(sys.argv[1]),
            local_scheduler=False)
"""


def test_luigid_source_shows_tasks_of_a_central_scheduler(tmp_path: Path, luigid) -> None:
    root = make_workspace(tmp_path / "ws", active=False)
    port = luigid.port
    (root / "luigi.cfg").write_text(
        f"[core]\nlocal_scheduler = false\ndefault_scheduler_host = 127.0.0.1\n"
        f"default_scheduler_port = {port}\n"
    )
    assert scheduler_address(root / "luigi.cfg") == ("127.0.0.1", port)
    source = LuigidSource("127.0.0.1", port)
    deadline = time.monotonic() + 60
    worker = subprocess.Popen(
        [sys.executable, "-c", SLOW_TASK, str(port), str(tmp_path / "never")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not [t for t in source.tasks() if t.state == "running"]:
            assert time.monotonic() < deadline, "the task never ran"
            time.sleep(0.2)
        running = [t for t in source.tasks() if t.state == "running"]
        assert running[0].family == "Preprocess"
        monitor = Monitor(Workspace.at(root))
        snapshot = monitor.poll()
        assert snapshot.scheduler == f"luigid 127.0.0.1:{port}"
        assert snapshot.active and snapshot.focus.origin == "scheduler"
        assert {r.label: r.state for r in snapshot.rows}["Preprocess"] == "running"
    finally:
        worker.kill()
        worker.wait()
        luigid.stop()
    gone = Monitor(Workspace.at(root)).poll()
    assert "unreachable" in gone.scheduler and not gone.active


def test_scheduler_address_defaults_to_local(tmp_path: Path) -> None:
    cfg = tmp_path / "luigi.cfg"
    cfg.write_text("[core]\nlocal_scheduler = true\ndefault_scheduler_host = x\n")
    assert scheduler_address(cfg) is None
    cfg.write_text("not an ini file [")
    assert scheduler_address(cfg) is None
    assert scheduler_address(tmp_path / "missing.cfg") is None


def test_summary_cache_reads_a_manifest_once_per_stamp(tmp_path: Path, monkeypatch) -> None:
    """The console reads the manifest ahead; the Data screen then gets that summary (one read
    for two readers, even at once), a changed file is read again, and r reads it whatever."""
    import threading

    from kwsops.tui.readers import manifest as summaries

    root = make_workspace(tmp_path / "ws", active=False)
    path = root / "data" / "output" / "manifest.csv"
    reads: list[Path] = []
    real = summaries.read_manifest

    def counted(p):
        reads.append(p)
        return real(p)

    monkeypatch.setattr(summaries, "read_manifest", counted)
    cache = summaries.SummaryCache(path)
    results = []
    readers = [threading.Thread(target=lambda: results.append(cache.read())) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert len(reads) == 1 and results[0] is results[1] and results[0].kept == 36
    assert cache.read(cache.stamp()) is results[0] and len(reads) == 1
    assert cache.read(cache.stamp(), fresh=True) is not results[0] and len(reads) == 2
    path.write_text(path.read_text() + "extra.wav,gun,,rejected,too short: 0.1 s,,,,,,,\n")
    assert "extra.wav" in [r.source for r in cache.read().rejected] and len(reads) == 3
    path.unlink()
    assert cache.read() is None and cache.stamp() == (0, -1)
