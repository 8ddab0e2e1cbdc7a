"""Run folders, the structured event log and the one-run-per-workspace lock."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from kwsops.runs.events import EventLog, read_events
from kwsops.runs.folder import (
    RunPaths,
    create_run,
    effective_status,
    list_runs,
    read_status,
    write_status,
)
from kwsops.runs.lock import AlreadyRunning, WorkspaceLock
from kwsops.runs.state import RunState


def _append(path, n):
    log = EventLog(path)
    for i in range(n):
        log.emit("task_progress", task="T", family="Train", done=i, total=n, detail="x" * 500)


def test_events_from_several_processes_interleave_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(path, 200)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    batch = read_events(path)
    assert batch.errors == []
    assert len(batch.events) == 600


def test_read_events_is_incremental_and_waits_for_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.emit("task_started", task="A", family="Preprocess")
    first = read_events(path)
    assert len(first.events) == 1
    with open(path, "a") as handle:
        handle.write('{"event": "task_done", "task": "A"')  # half a line
    second = read_events(path, first.offset)
    assert second.events == [] and second.offset == first.offset
    with open(path, "a") as handle:
        handle.write(', "family": "Preprocess"}\nnot json at all\n')
    third = read_events(path, second.offset)
    assert [e["event"] for e in third.events] == ["task_done"]
    assert len(third.errors) == 1 and "bad event" in third.errors[0]


def test_unknown_event_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown event type"):
        EventLog(tmp_path / "e.jsonl").emit("made_up")


def test_run_state_folds_events():
    events = [
        {"event": "run_started", "ts": 1.0, "run_id": "r1", "params": {"epochs": 2}},
        {"event": "task_up_to_date", "ts": 1.1, "task": "VersionInput()", "family": "VersionInput"},
        {"event": "task_started", "ts": 1.2, "task": "P", "family": "Preprocess"},
        {
            "event": "task_progress",
            "ts": 1.3,
            "task": "P",
            "family": "Preprocess",
            "done": 5,
            "total": 10,
            "detail": "5/10 files",
        },
        {
            "event": "task_done",
            "ts": 2.0,
            "task": "P",
            "family": "Preprocess",
            "duration": 0.8,
            "detail": "9 kept, 1 rejected",
        },
        {"event": "task_started", "ts": 2.1, "task": "T", "family": "TrainFold"},
        {
            "event": "task_failed",
            "ts": 2.5,
            "task": "T",
            "family": "TrainFold",
            "duration": 0.4,
            "error": "ValueError: boom",
        },
        {"event": "run_finished", "ts": 3.0, "status": "failed", "exit_code": 1},
    ]
    state = RunState().apply_all(events)
    assert [t.family for t in state.ordered()] == ["VersionInput", "Preprocess", "TrainFold"]
    assert state.tasks["VersionInput()"].status == "up to date"
    assert state.tasks["P"].status == "done" and state.tasks["P"].done == 10
    assert state.tasks["P"].detail == "9 kept, 1 rejected"
    assert [t.task for t in state.failed()] == ["T"]
    assert state.status == "failed" and state.exit_code == 1


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    lock_file = tmp_path / "run.lock"
    first = WorkspaceLock(lock_file)
    first.acquire("run-1", origin="cron")
    try:
        code = (
            "import sys\n"
            "from kwsops.runs.lock import WorkspaceLock, AlreadyRunning\n"
            f"lock = WorkspaceLock({str(lock_file)!r})\n"
            "try:\n    lock.acquire('run-2')\nexcept AlreadyRunning as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 3
        assert "run-1" in result.stdout
        assert WorkspaceLock(lock_file).is_held()
    finally:
        first.release()
    assert not WorkspaceLock(lock_file).is_held()


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    lock_file = tmp_path / "run.lock"
    code = (
        "import time\nfrom kwsops.runs.lock import WorkspaceLock\n"
        f"WorkspaceLock({str(lock_file)!r}).acquire('victim')\nprint('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    lock = WorkspaceLock(lock_file)
    with pytest.raises(AlreadyRunning, match="victim"):
        lock.acquire("next")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lock.acquire("next")
    assert lock.holder()["run_id"] == "next"
    lock.release()


def test_run_folders_list_newest_first_and_dead_runs_read_as_killed(tmp_path):
    first = create_run(tmp_path, {"epochs": 1}, "cli", run_id="20260101-000000-aaaa")
    second = create_run(tmp_path, {"epochs": 2}, "tui", run_id="20260102-000000-bbbb")
    assert [r.run_id for r in list_runs(tmp_path)] == [second.run_id, first.run_id]
    assert effective_status(read_status(second)) == "running"
    write_status(first, status="running", pid=2**22 + 12345)
    assert effective_status(read_status(first)) == "killed"
    write_status(second, status="ok", exit_code=0, finished=time.time())
    assert effective_status(read_status(RunPaths(second.root))) == "ok"


RUN_THEN_HANG = """
import sys, time
from kwsops.runs.events import EventLog
from kwsops.runs.folder import create_run
paths = create_run(sys.argv[1], {}, "cli", run_id="20260103-000000-cccc")
EventLog(paths.events).emit("task_started", task="T", family="TrainFold")
print("started", flush=True)
time.sleep(60)
"""


def test_a_dead_run_is_finalised_as_killed_on_disk_by_the_next_reader(tmp_path):
    victim = subprocess.Popen(
        [sys.executable, "-c", RUN_THEN_HANG, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert victim.stdout.readline().strip() == "started"
    run = RunPaths(tmp_path / "20260103-000000-cccc")
    assert read_status(run)["status"] == "running"
    victim.kill()
    victim.wait()
    readers = [threading.Thread(target=read_status, args=(run,)) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    on_disk = json.loads(run.status.read_text())
    assert on_disk["status"] == "killed" and on_disk["duration"] >= 0
    finished = [e for e in read_events(run.events).events if e["event"] == "run_finished"]
    assert [e["status"] for e in finished] == ["killed"], "finalised once, by one reader"
    assert RunState().apply_all(read_events(run.events).events).status == "killed"


LOCK_THEN_FORK = """
import os, sys, time
from kwsops.runs.lock import WorkspaceLock, forget_inherited
WorkspaceLock(sys.argv[1]).acquire("parent-run")
child = os.fork()
if child == 0:
    forget_inherited()  # what a forked Luigi worker does first
    print(os.getpid(), flush=True)
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


def test_the_lock_dies_with_the_run_even_if_a_forked_worker_lives_on(tmp_path):
    lock_file = tmp_path / "run.lock"
    parent = subprocess.Popen(
        [sys.executable, "-c", LOCK_THEN_FORK, str(lock_file)], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    try:
        assert WorkspaceLock(lock_file).is_held()
        holder = WorkspaceLock(lock_file).holder()
        assert holder["pid"] == parent.pid and holder["pid_started"] > 0
        parent.kill()
        parent.wait()
        assert psutil.pid_exists(child)
        assert not WorkspaceLock(lock_file).is_held(), "the forked child kept the lock"
    finally:
        os.kill(child, signal.SIGKILL)


def test_listing_recent_runs_reads_only_their_status(tmp_path):
    for day in range(1, 8):
        create_run(tmp_path, {}, "cli", run_id=f"202601{day:02d}-000000-aaaa")
    twin = create_run(tmp_path, {}, "cli", run_id="20260107-000000-bbbb")  # the same second
    write_status(twin, started=time.time() + 10)
    fifos = [tmp_path / f"202601{day:02d}-000000-aaaa" / "status.json" for day in range(1, 5)]
    for fifo in fifos:  # old runs whose status.json would block any reader
        fifo.unlink()
        os.mkfifo(fifo)
    found: list = []
    lister = threading.Thread(target=lambda: found.append(list_runs(tmp_path, limit=3)))
    lister.start()
    lister.join(10)
    if lister.is_alive():  # unblock it before failing
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not lister.is_alive(), "list_runs read the status of an old run"
    assert [r.run_id for r in found[0]] == [
        "20260107-000000-bbbb",
        "20260107-000000-aaaa",
        "20260106-000000-aaaa",
    ]


def test_a_run_from_another_machine_is_judged_by_the_workspace_lock(tmp_path):
    runs_dir = tmp_path / "ws" / "reports" / "runs"
    run = create_run(runs_dir, {}, "cli", run_id="20260104-000000-dddd")
    write_status(run, host="another-machine")  # its pid means nothing here
    lock = WorkspaceLock(tmp_path / "ws" / ".kwsops" / "run.lock")
    lock.acquire(run.run_id)
    try:
        assert read_status(run)["status"] == "running", "its machine holds the lock for it"
    finally:
        lock.release()
    assert read_status(run)["status"] == "killed"


def test_a_train_task_that_trains_its_folds_together_has_a_curve_per_fold() -> None:
    state = RunState()
    started = {"event": "task_started", "ts": 1.0, "task": "T", "family": "Train",
               "params": {"batch_size": "16"}}  # fmt: skip
    state.apply(started)
    for fold, epoch, acc in ((0, 1, 0.5), (1, 1, 0.4), (0, 2, 0.6), (0, 2, 0.7)):
        state.apply({"event": "task_progress", "ts": 2.0, "task": "T", "family": "Train",
                     "metrics": {"epoch": epoch, "val_acc": acc, "fold": fold}})  # fmt: skip
    curves = dict(state.tasks["T"].curves())
    assert [r["val_acc"] for r in curves["Train batch 16 fold 0"]] == [0.5, 0.7]  # last counts
    assert [r["val_acc"] for r in curves["Train batch 16 fold 1"]] == [0.4]
