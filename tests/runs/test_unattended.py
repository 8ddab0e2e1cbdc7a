"""Unattended runs: one run at a time, honest exit codes, kill -9 at the worst moments, run
reports, and a real `luigid` central scheduler spreading folds over two workers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from kwsops import exitcodes
from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs, read_status
from kwsops.stamps import STAMP_NAME
from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace
from tests.helpers.cli import assert_remote_has_everything, run_cli

pytestmark = pytest.mark.slow

SMALL = ("--batch-sizes", "16", "--epochs", "2", "--folds", "2")


def start_run(ws: Workspace, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kwsops.cli", "-C", str(ws.root), "run", *args],
        cwd=ws.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def wait_for_event(
    ws: Workspace, family: str, event: str = "task_started", timeout: float = 240
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in list_runs(ws.runs_dir)[:1]:
            for record in read_events(run.events).events:
                if record.get("family") == family and record["event"] == event:
                    return record
        time.sleep(0.05)
    raise AssertionError(f"no {event} for {family} within {timeout} s")


def started_families(ws: Workspace) -> set[str]:
    run = list_runs(ws.runs_dir)[0]
    return {e["family"] for e in read_events(run.events).events if e["event"] == "task_started"}


def test_two_runs_at_once_exactly_one_runs(demo_workspace):
    ws = demo_workspace
    first = start_run(ws, *SMALL, "--epochs", "1")
    wait_for_event(ws, "VersionInput")
    second = run_cli(ws, "run", "--batch-sizes", "32", check=False)
    assert second.returncode == exitcodes.ALREADY_RUNNING
    active = list_runs(ws.runs_dir)[0].run_id
    assert active in second.stderr and "another kwsops run is active" in second.stderr
    out, errors = first.communicate(timeout=600)
    assert first.returncode == 0, errors
    runs = list_runs(ws.runs_dir)
    assert len(runs) == 1, "the refused start leaves no run folder"
    assert read_status(runs[0])["status"] == "ok"
    assert runs[0].report_md.exists() and runs[0].report_html.exists()
    assert "<svg" in runs[0].report_html.read_text()
    report = runs[0].report_md.read_text()  # what each task read and wrote
    assert "| Preprocess" in report and "data/input" in report and "data/output" in report
    assert "outcome: **ok**" in report
    shown = run_cli(ws, "runs", "show", "last")
    assert "VersionModels" in shown.stdout and "ok" in shown.stdout
    assert active in run_cli(ws, "runs").stdout


def in_progress(ws: Workspace, pid: int, family: str) -> bool:
    """The stage is mid-work: its temp output exists, or its `dvc push` is running."""
    if family == "Preprocess":
        return any(ws.data_dir.glob(".output.tmp-*"))
    if family == "Train":  # its folds train together, each into a temp folder
        return any(ws.models_dir.glob("batch_16/.fold_*.tmp-*"))
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return False
    for child in children:  # a child may exit (or be a zombie) between listing and reading
        try:
            if "push" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


# the stages a kill -9 lands in, in the order one workspace reaches them: each kill's next run
# must run the killed stage again, and is itself killed in the next stage of the list
KILLS = [("Preprocess", "output"), ("VersionOutput", None), ("Train", "models/batch_16/fold_0")]


def test_kill_9_mid_stage_then_next_run_completes(demo_workspace):
    """A run killed (its process group, SIGKILL) while Preprocess writes, while VersionOutput's
    `dvc push` runs, and while Train's folds train: each killed stage has no stamp and runs
    again in the next run; the run after the last kill completes, leaving no temp output and
    the remote holding everything. One workspace: each next run is the following kill's run."""
    ws = demo_workspace
    killed_before: str | None = None
    for family, folder in KILLS:
        victim = start_run(ws, *SMALL)
        deadline = time.monotonic() + 300
        while not in_progress(ws, victim.pid, family):
            assert victim.poll() is None and time.monotonic() < deadline, f"{family} never ran"
            time.sleep(0.02)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        if killed_before:
            assert killed_before in started_families(ws), f"{killed_before} must run again"
        killed = list_runs(ws.runs_dir)[0]
        assert family not in {
            e["family"] for e in read_events(killed.events).events if e["event"] == "task_done"
        }
        if folder:
            assert not (ws.data_dir / folder / STAMP_NAME).exists(), "a killed stage left a stamp"
        shown = run_cli(ws, "runs", "show", killed.run_id)
        assert "killed" in shown.stdout
        killed_before = family

    result = run_cli(ws, "run", *SMALL)
    assert result.returncode == 0
    assert killed_before in started_families(ws), "the killed stage must run again"
    leftovers = [p for p in ws.data_dir.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []
    assert_remote_has_everything(ws)


def test_a_failing_task_makes_both_entry_points_exit_non_zero(workspace):
    ws = workspace
    (ws.input_dir / "catch").mkdir(parents=True)
    (ws.input_dir / "catch" / "broken__clip.wav").write_text("not audio")
    result = run_cli(ws, "run", *SMALL, check=False)
    assert result.returncode == exitcodes.TASK_FAILED
    assert "Preprocess" in result.stderr and "could be used (1 unreadable" in result.stderr
    assert read_status(list_runs(ws.runs_dir)[0])["status"] == "failed"

    luigi = subprocess.run(
        [tool("luigi"), "--module", "tasks", "Validate"],
        cwd=ws.root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert luigi.returncode != 0
    run = list_runs(ws.runs_dir)[0]
    assert read_status(run)["status"] == "failed" and "luigi" in run.params.read_text()


def test_quiet_prints_nothing_on_success_and_the_gate_exits_5_from_luigi(demo_workspace):
    import configparser

    ws = demo_workspace
    config = configparser.ConfigParser(interpolation=None)
    config.read(ws.root / "luigi.cfg")
    config["Train"].update({"epochs": "2", "folds": "2"})  # SMALL, for both entry points
    config["VersionModels"]["batch_sizes"] = "[16]"
    with (ws.root / "luigi.cfg").open("w") as handle:
        config.write(handle)
    # what libraries say on stderr in runs that succeed: libmpg123 from C ("Xing stream size
    # off ..." for a cut mp3), matplotlib's "Glyph 128077 missing" for a name in a plot title
    import numpy as np
    import soundfile as sf

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    sf.write(ws.root / "cut.mp3", tone, 16000, format="MP3", subtype="MPEG_LAYER_III")
    mp3 = (ws.root / "cut.mp3").read_bytes()
    (ws.input_dir / "catch" / "spk77__cut.mp3").write_bytes(mp3[: len(mp3) // 2 + 7])
    first = sorted(ws.input_dir.glob("catch/*.wav"))[0]
    shutil.copy(first, ws.input_dir / "catch" / "0\N{THUMBS UP SIGN}__first.wav")
    result = run_cli(ws, "run", "--quiet")
    assert result.stdout == "" and result.stderr == ""
    log = list_runs(ws.runs_dir)[0].log.read_text(errors="replace")
    assert "Xing stream size off" in log and "Glyph 128077" in log, "captured, not lost"
    # the same pipeline, now up to date but for Validate, with a gate only a perfect model
    # passes (fail_below is at most 1, and two epochs make no perfect model)
    luigi = subprocess.run(
        [tool("luigi"), "--module", "tasks", "Validate", "--Validate-fail-below", "1.0"],
        cwd=ws.root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert luigi.returncode == exitcodes.QUALITY_GATE, luigi.stderr[-2000:]
    run = list_runs(ws.runs_dir)[0]
    assert read_status(run)["exit_code"] == exitcodes.QUALITY_GATE
    assert started_families(ws) == {"Validate"}  # nothing else was stale


def fold_results(ws: Workspace) -> list[tuple[float, float, dict]]:
    """Each fold's validation numbers and weights (the file's metadata holds timings)."""
    from safetensors.numpy import load_file

    results = []
    for fold in (0, 1):
        folder = ws.batch_dir(16) / f"fold_{fold}"
        metrics = json.loads((folder / "metrics.json").read_text())
        weights = load_file(folder / "model.safetensors")
        results.append(
            (metrics["val_acc"], metrics["val_loss"], {k: v.tobytes() for k, v in weights.items()})
        )
    return results


def test_central_scheduler_runs_folds_on_two_workers_at_once(demo_workspace, luigid, tmp_path):
    ws = demo_workspace
    # a secret the joining worker's log would show: Luigi prints this parameter hash in the id
    # of every task without parameters (VersionInput__99914b932b)
    for args in (["add", "--local", "spare", "webdav://127.0.0.1:9/kws"],
                 ["modify", "--local", "spare", "password", "99914b932b"]):  # fmt: skip
        subprocess.run([tool("dvc"), "remote", *args], cwd=ws.root, check=True)
    twin = Workspace(tmp_path / "twin")
    shutil.copytree(ws.root, twin.root, symlinks=True)
    subprocess.run(
        [tool("dvc"), "remote", "modify", "--local", "local", "url", str(twin.local_remote_dir)],
        cwd=twin.root,
        check=True,
    )
    one_thread = {"KWSOPS_TORCH_THREADS": "1"}
    main = start_run(
        ws,
        *SMALL,
        "--scheduler-host",
        "127.0.0.1",
        "--scheduler-port",
        str(luigid.port),
        "--workers",
        "2",
        "--fold-tasks",  # one task per fold, for workers on several machines
        env=one_thread,
    )
    wait_for_event(ws, "VersionInput")  # a worker on "another machine" joins; it may or may
    # not win a task from the run's own two workers, but it must finish cleanly
    helper = subprocess.run(
        [
            sys.executable,
            "-m",
            "kwsops.cli",
            "-C",
            str(ws.root),
            "worker",
            "--scheduler-host",
            "127.0.0.1",
            "--scheduler-port",
            str(luigid.port),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **one_thread},
    )
    assert helper.returncode == 0, helper.stderr
    out, errors = main.communicate(timeout=600)
    assert main.returncode == 0, errors

    events = read_events(list_runs(ws.runs_dir)[0].events).events
    folds = {
        e["task"]: e
        for e in events
        if e.get("family") == "TrainFold" and e["event"] == "task_started"
    }
    done = {
        e["task"]: e["ts"]
        for e in events
        if e.get("family") == "TrainFold" and e["event"] == "task_done"
    }
    assert len(folds) == 2 and len({e["pid"] for e in folds.values()}) == 2
    (a, start_a), (b, start_b) = ((k, v["ts"]) for k, v in folds.items())
    assert start_a < done[b] and start_b < done[a], "the two folds overlapped in time"

    log = list_runs(ws.runs_dir)[0].log.read_text()  # both workers' lines, masked
    assert "VersionInput__***" in log and "99914b932b" not in log

    local = run_cli(twin, "run", *SMALL, "--fold-tasks", env=one_thread)
    assert local.returncode == 0
    assert fold_results(twin) == fold_results(ws), "same seed, same models"


def wait_for_luigid_worker(port: int, count: int, timeout: float = 60) -> None:
    """Until luigid knows ``count`` workers (the run's and a joined one)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{port}/api/worker_list"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as answer:
            if len(json.loads(answer.read())["response"]) >= count:
                return
        time.sleep(0.2)
    raise AssertionError(f"luigid never had {count} workers")


def test_a_run_that_loses_its_scheduler_says_so_and_exits_1(demo_workspace, luigid):
    """luigid dies mid-stage: not a configuration error (4), nor a cancel by SIGTERM."""
    import configparser

    ws = demo_workspace
    config = configparser.ConfigParser(interpolation=None)
    config.read(ws.luigi_cfg)
    config["core"].update({"rpc-retry-attempts": "2", "rpc-retry-wait": "1"})  # not a minute
    with ws.luigi_cfg.open("w") as handle:
        config.write(handle)
    where = ("--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid.port))
    proc = start_run(ws, *SMALL, *where)
    helper = None
    try:
        wait_for_event(ws, "Preprocess")
        # an extra worker joined (`kwsops worker`) loses the same scheduler
        helper = subprocess.Popen([sys.executable, "-m", "kwsops.cli", "-C", str(ws.root),
                                   "worker", *where], cwd=ws.root, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        wait_for_luigid_worker(luigid.port, 2)
        luigid.stop()
        out, errors = proc.communicate(timeout=300)
        helper_out, helper_errors = helper.communicate(timeout=300)
    except (AssertionError, subprocess.TimeoutExpired):
        # a run that hangs fails this test in bounded time and leaves no process behind
        for hung in filter(None, (proc, helper)):
            with contextlib.suppress(ProcessLookupError):  # it may have ended already
                os.killpg(hung.pid, signal.SIGKILL)
        out, errors = proc.communicate()
        said = helper.communicate()[1] if helper else ""
        raise AssertionError(f"the run or worker did not end on its own:\n{errors[-3000:]}"
                             f"\n{said[-3000:]}") from None  # fmt: skip
    assert helper.returncode == exitcodes.TASK_FAILED, helper_errors
    assert "lost the scheduler" in helper_errors and "Traceback" not in helper_errors + helper_out
    assert len(helper_errors.strip().splitlines()) == 1, helper_errors
    assert proc.returncode == exitcodes.TASK_FAILED, errors
    assert "lost the scheduler" in errors and "Traceback" not in errors + out
    run = list_runs(ws.runs_dir)[0]
    status = read_status(run)
    assert status["status"] == "failed" and "lost the scheduler" in status["reason"]
    shown = run_cli(ws, "runs", "show", run.run_id).stdout
    assert "cancelled by SIGTERM" not in shown
