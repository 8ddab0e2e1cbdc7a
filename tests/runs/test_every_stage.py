"""Every stage, on a workspace whose data/input holds what DVC and decoders cannot read (a
FIFO, a socket, links to /dev/zero, to nothing, to a folder): run alone from Luigi's own
command line; stopped the three ways a user does (`kwsops cancel`, SIGTERM, `timeout`); its
run killed with SIGKILL; a git commit that fails and is made by the next run; secrets masked
in what `luigi` logs; and `kwsops gc`. Real git, DVC, ClearML (offline), two forked workers.

The module runs every stage alone once (``alone``); each other test works on its own copy of
that workspace (``ws``), so the tests pass alone and in any order.
"""

from __future__ import annotations

import configparser
import contextlib
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from kwsops import exitcodes
from kwsops.runs.events import read_events
from kwsops.runs.folder import RunPaths, list_runs, read_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.stamps import STAMP_NAME
from kwsops.tracking.index import index_path
from kwsops.versioning.dvc_config import cache_dir
from kwsops.versioning.integrity import object_path
from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace
from tests.helpers.cli import assert_remote_has_everything, run_cli
from tests.helpers.files import git
from tests.helpers.workspaces import clone_workspace

pytestmark = pytest.mark.slow

STAGES = [
    ("VersionInput", []),
    ("Preprocess", []),
    ("VersionOutput", []),
    ("MakeSpectrograms", []),
    ("VersionSpectrograms", []),
    # run alone, a fold takes its params from [TrainFold] or flags; Train hands [Train]'s down
    ("TrainFold", ["--batch-size", "16", "--fold", "0", "--epochs", "1", "--folds", "2"]),
    ("Train", ["--batch-size", "16"]),
    ("VersionModels", []),
    ("Validate", []),
]
# what a user leaves in data/input, and the manifest reason each gets
SPECIAL = {
    "rock/fifo__x.wav": "not a regular file: named pipe (FIFO)",
    "rock/zero__x.wav": "not a regular file: symlink to a device",
    "gun/dangling__x.wav": "not a regular file: dangling symlink",
    "gun/sock__x.wav": "not a regular file: socket",
    "catch/elsewhere": "not a regular file: symlink to a folder (not followed)",
}


def luigi(ws: Workspace, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("luigi"), "--module", "tasks", *args],
        cwd=ws.root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def events_of_last_run(ws: Workspace) -> list[dict]:
    return read_events(list_runs(ws.runs_dir)[0].events).events


def families(events: list[dict], kind: str) -> set[str]:
    return {e["family"] for e in events if e["event"] == kind}


def kinds(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): stat.S_IFMT(p.lstat().st_mode) for p in root.rglob("*")}


@dataclass
class Alone:
    """The workspace after each stage ran alone, what data/input held before, and each
    stage's run: (stage, luigi's exit code, its stderr, the families done, the run's status)."""

    ws: Workspace
    raw: dict[str, int]
    runs: list[tuple[str, int, str, set[str], str]]


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory, demo_source: Path, new_workspace) -> Alone:
    root = tmp_path_factory.mktemp("alone")
    ws = new_workspace(root / "ws")
    shutil.copytree(demo_source, ws.input_dir, dirs_exist_ok=True)
    os.mkfifo(ws.input_dir / "rock" / "fifo__x.wav")
    (ws.input_dir / "rock" / "zero__x.wav").symlink_to("/dev/zero")
    (ws.input_dir / "gun" / "dangling__x.wav").symlink_to(root / "gone.wav")
    (root / "outside").mkdir()
    (ws.input_dir / "catch" / "elsewhere").symlink_to(root / "outside")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ws.input_dir / "gun" / "sock__x.wav"))
    linked = next(ws.input_dir.glob("rock/*.flac"))
    shutil.copy(linked, root / "outside.flac")
    (ws.input_dir / "rock" / "spk99__linked.flac").symlink_to(root / "outside.flac")
    config = configparser.ConfigParser(interpolation=None)
    config.read(ws.luigi_cfg)
    config["Train"].update({"epochs": "1", "folds": "2"})
    config["VersionModels"]["batch_sizes"] = "[16]"
    with ws.luigi_cfg.open("w") as handle:
        config.write(handle)
    raw, runs = kinds(ws.input_dir), []
    for stage, args in STAGES:
        result = luigi(ws, stage, *args)
        if result.returncode != 0:
            runs.append((stage, result.returncode, result.stderr, set(), ""))
            break  # the stages after it would fail for want of its output
        ran = families(events_of_last_run(ws), "task_done")
        status = read_status(list_runs(ws.runs_dir)[0])["status"]
        runs.append((stage, 0, result.stderr, ran, status))
    return Alone(ws, raw, runs)


@pytest.fixture
def ws(alone: Alone, tmp_path: Path) -> Workspace:
    """A private copy of the workspace where every stage ran: a test may stop, kill, commit
    and collect in it."""
    return clone_workspace(alone.ws.root, tmp_path / "ws")


def test_every_stage_runs_alone_from_luigis_command_line(alone: Alone):
    ws = alone.ws
    for stage, code, stderr, ran, status in alone.runs:
        assert code == 0, f"{stage}: {stderr[-3000:]}"
        assert ran == {stage}, (stage, ran)  # Train trains fold 1 itself (fold 0 is done)
        assert status == "ok"
    assert [run[0] for run in alone.runs] == [stage for stage, _ in STAGES]
    assert len(list_runs(ws.runs_dir)) == len(STAGES), "each invocation is one recorded run"
    assert kinds(ws.input_dir) == alone.raw, "nothing in data/input was touched"
    with open(ws.output_dir / "manifest.csv", newline="") as handle:
        rows = {row["source"]: row for row in csv.DictReader(handle)}
    for source, reason in SPECIAL.items():
        assert (rows[source]["status"], rows[source]["reason"]) == ("rejected", reason)
    assert rows["rock/spk99__linked.flac"]["status"] == "kept", "a link to a recording is read"
    listed = git(ws.root, "show", "HEAD:.dvcignore")  # committed with the training
    for source in [s for s in SPECIAL if s != "catch/elsewhere"]:
        assert f"/data/input/{source}" in listed.splitlines()
    status = subprocess.run([tool("dvc"), "status", "--json"], cwd=ws.root, capture_output=True,
                            text=True, timeout=300, check=True)  # fmt: skip
    assert json.loads(status.stdout or "{}") == {}


# a task module that holds Luigi's own lock for `luigi --module tasks VersionSpectrograms`
LOCK_HOLDER = """
import os, time
import luigi

class VersionSpectrograms(luigi.Task):
    def complete(self):
        return False

    def run(self):
        open(os.environ["HOLDER_READY"], "w").close()
        time.sleep(120)
"""


def test_the_same_command_elsewhere_does_not_stop_a_luigi_run(ws: Workspace, tmp_path: Path):
    """Luigi's own lock keys on the command line, machine-wide: the same `luigi --module tasks
    VersionSpectrograms` running in another workspace made this one exit 3 without a word.
    The workspace lock is what guards a workspace."""
    fake, other, ready = tmp_path / "fake", tmp_path / "other", tmp_path / "ready"
    (fake / "tasks").mkdir(parents=True)
    (fake / "tasks" / "__init__.py").write_text(LOCK_HOLDER)
    other.mkdir()
    (other / "luigi.cfg").write_text("[core]\nlocal_scheduler = true\n")
    env = {**os.environ, "PYTHONPATH": str(fake), "HOLDER_READY": str(ready),
           "LUIGI_CONFIG_PATH": str(other / "luigi.cfg")}  # fmt: skip
    holder = subprocess.Popen([tool("luigi"), "--module", "tasks", "VersionSpectrograms"],
                              cwd=other, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert holder.poll() is None, "the lock holder ended"
            assert time.monotonic() < deadline, "the lock holder never ran its task"
            time.sleep(0.1)
        result = luigi(ws, "VersionSpectrograms")
        assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
        assert read_status(list_runs(ws.runs_dir)[0])["status"] == "ok"
    finally:
        holder.kill()
        holder.wait()


def test_secrets_of_the_workspace_are_masked_in_what_luigi_logs(ws: Workspace, tmp_path: Path):
    """The ClearML key in the user's clearml.conf is registered by `luigi --module tasks`
    too: here it equals the parameter hash Luigi prints in the id of every task without
    parameters (`VersionSpectrograms__99914b932b`), so Luigi logs it on every run."""
    conf = tmp_path / "clearml.conf"
    conf.write_text(
        'api {\n  credentials {"access_key": "AK-1234", "secret_key": "99914b932b"}\n}\n'
    )
    result = luigi(ws, "VersionSpectrograms", env={"CLEARML_CONFIG_FILE": str(conf)})
    assert result.returncode == 0, result.stderr[-3000:]
    log = list_runs(ws.runs_dir)[0].log.read_text()
    for shown in (result.stderr, log):
        assert "VersionSpectrograms__***" in shown
        assert "99914b932b" not in shown


ORDER = [stage for stage, _ in STAGES]
WAYS = ("kwsops cancel", "SIGTERM", "timeout", "Ctrl-C")
RUN = ("--batch-sizes", "16", "--workers", "2")  # epochs and folds: luigi.cfg [Train]
# the stages stopped in one session: a sample seeded by the session's seed (the one
# pytest-randomly prints; `--randomly-seed=N` repeats it), always ending with Validate, which
# the next run then finishes; KWSOPS_TEST_CANCEL_STAGES=all stops each of the nine in turn
CANCEL_SAMPLE = len(WAYS)  # one stage per way, so every way stops some stage each session


def stages_to_cancel(seed: object) -> list[tuple[str, int, list[float]]]:
    """(stage, index of its first way in WAYS, the offsets of its tries) for this session.
    The offsets say how long after a stage starts the stop lands: seeded, a few per stage (the
    last try: at once)."""
    rng = random.Random(f"cancel-{seed}")
    if os.environ.get("KWSOPS_TEST_CANCEL_STAGES") == "all":
        chosen, first = ORDER, list(range(len(ORDER)))
    else:
        chosen = sorted(rng.sample(ORDER[:-1], CANCEL_SAMPLE - 1), key=ORDER.index) + ORDER[-1:]
        first = rng.sample(range(len(WAYS)), len(WAYS))
    return [
        (stage, way, [rng.uniform(0.1, 1.0), rng.uniform(0.0, 0.3), 0.0])
        for stage, way in zip(chosen, first, strict=True)
    ]


def start_run(ws: Workspace, way: str, *args: str, stderr: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "kwsops.cli", "-C", str(ws.root), "run", *args]
    if way == "timeout":  # a crontab line's limit: SIGALRM makes it expire now (coreutils)
        command = ["timeout", "-s", "TERM", "3600", *command]
    err = stderr.open("w") if stderr else subprocess.DEVNULL
    return subprocess.Popen(command, cwd=ws.root, stdout=subprocess.DEVNULL,
                            stderr=err, start_new_session=True)  # fmt: skip


def wait_for_start(
    ws: Workspace, before: set[str], family: str, proc: subprocess.Popen, count: int = 1
) -> RunPaths:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        new = [run for run in list_runs(ws.runs_dir) if run.run_id not in before]
        if new:
            events = read_events(new[0].events).events
            started = [e for e in events if e["event"] == "task_started" and e["family"] == family]
            if len(started) >= count:
                return new[0]
        assert proc.poll() is None, f"the run ended before {family} started"
        time.sleep(0.02)
    raise AssertionError(f"{family} never started")


def outcomes(run: RunPaths, kind: str) -> dict[str, dict]:
    return {e["family"]: e for e in read_events(run.events).events if e["event"] == kind}


def run_processes(run: RunPaths) -> list[psutil.Process]:
    """Live processes working for ``run`` (its folder is in their environment)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and (
                proc.environ().get("KWSOPS_RUN_DIR") == str(run.root)
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def stamps_of(ws: Workspace, family: str) -> list[Path]:
    folders = {
        "Preprocess": [ws.output_dir],
        "MakeSpectrograms": [ws.spec_dir],
        "TrainFold": [ws.batch_dir(16) / "fold_0", ws.batch_dir(16) / "fold_1"],
        "Train": [ws.batch_dir(16)],
    }
    if family in folders:
        return [folder / STAMP_NAME for folder in folders[family]]
    return [ws.stamps_dir / f"{family}.json"]


@contextlib.contextmanager
def uncached(ws: Workspace, families: list[str], aside: Path):
    """The DVC cache's copies of these stages' stamps moved to ``aside`` while inside, back
    after. With them cached, a stage whose stamp is gone comes back from the cache (a link a
    file, kwsops.versioning.integrity.restore) instead of being computed: a stop or a kill
    then lands on no work. Without them, the stage computes as it did before versioning."""
    cache, moved = cache_dir(ws.root), []
    aside.mkdir(parents=True, exist_ok=True)
    for family in families:
        for stamp in stamps_of(ws, family):
            obj = object_path(cache, hashlib.md5(stamp.read_bytes()).hexdigest())
            if obj.is_file():
                os.replace(obj, aside / obj.name)
                moved.append(obj)
    assert moved, f"{families}: no stamp of theirs in the DVC cache"
    try:
        yield
    finally:
        for obj in moved:
            os.replace(aside / obj.name, obj)


# the stages whose output is versioned with their stamp: a missing one comes from the cache
RESTORED = ("Preprocess", "MakeSpectrograms", "TrainFold", "Train")


def leftovers(ws: Workspace) -> list[Path]:
    return [p for p in ws.root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def test_a_cancel_in_any_stage_stops_the_run_and_keeps_the_last_output(
    ws: Workspace, tmp_path: Path, suite_seed: int
):
    """Each sampled stage in turn is made the first stale one (its stamp and those after it set
    aside: Luigi looks upstream only from an incomplete task), started by `kwsops run` and
    stopped while it runs, at a seeded offset into the stage, each of the four ways on some
    stage. Its previous output stays as it was, unstamped, so putting the stamps back restores
    the workspace; the last stage is left to the next run. A stop that lands as the stage
    finishes leaves it recorded as done."""
    for stage, first_way, offsets in stages_to_cancel(suite_seed):
        index = ORDER.index(stage)
        later = [path for family in ORDER[index:] for path in stamps_of(ws, family)]
        saved = {path: path.read_bytes() for path in later}
        # a stage that the DVC cache would give back is made to compute again
        aside = tmp_path / "aside"
        with uncached(ws, [stage], aside) if stage in RESTORED else contextlib.nullcontext():
            # the planned tries, then (a stage of the tiny data set can finish before a
            # `kwsops cancel` lands) up to three at once with a direct SIGTERM
            tries = [(WAYS[(first_way + i) % len(WAYS)], offsets[i]) for i in range(3)]
            for attempt, (way, offset) in enumerate(tries + [("SIGTERM", 0.0)] * 3):
                for path in saved:
                    path.unlink(missing_ok=True)
                before = {run.run_id for run in list_runs(ws.runs_dir)}
                # TrainFold runs in the fold-task mode; in the default one Train trains the folds
                errors = tmp_path / f"{stage}-{attempt}.err"
                proc = start_run(ws, way, *RUN, *(["--fold-tasks"] if stage == "TrainFold" else []),
                                 stderr=errors)  # fmt: skip
                run = wait_for_start(ws, before, stage, proc)
                time.sleep(offset)  # into the stage, not only at its start
                if way == "kwsops cancel":
                    run_cli(ws, "cancel")
                elif way == "Ctrl-C":  # the terminal signals the whole foreground group
                    os.killpg(proc.pid, signal.SIGINT)
                else:
                    proc.send_signal(signal.SIGALRM if way == "timeout" else signal.SIGTERM)
                expected = 124 if way == "timeout" else exitcodes.CANCELLED  # timeout's "expired"
                code = proc.wait(timeout=120)
                said = errors.read_text()
                assert "Traceback" not in said and "Exception ignored" not in said, (stage, said)
                done, failed = outcomes(run, "task_done"), outcomes(run, "task_failed")
                assert not (stage in done and stage in failed), f"{stage}: recorded as both"
                if read_status(run)["status"] == "ok":
                    assert code == exitcodes.OK, (stage, way)  # the stop came after the end
                    continue
                assert code == expected, (stage, way)
                if stage not in done:
                    break  # else it finished before the signal landed: again
            else:
                raise AssertionError(f"could not cancel {stage} while it ran")
        status = read_status(run)
        assert (status["status"], status["exit_code"]) == ("cancelled", exitcodes.CANCELLED)
        assert outcomes(run, "task_failed")[stage]["error"].startswith("cancelled by SIG")
        assert run_processes(run) == [], f"{stage} ({way}): a process outlived the run"
        assert not WorkspaceLock(ws.lock_file).is_held()
        assert leftovers(ws) == [], f"{stage} ({way}) left a half-written output"
        assert not any(path.exists() for path in saved), f"{stage} ({way}) looks done"
        assert all(path.parent.is_dir() for path in stamps_of(ws, stage)), "output kept"
        if stage != ORDER[-1]:
            for path, data in saved.items():
                path.write_bytes(data)

    run_cli(ws, "run", *RUN)
    last = list_runs(ws.runs_dir)[0]
    assert read_status(last)["status"] == "ok"
    assert set(outcomes(last, "task_done")) == {"Validate"}, "only the cancelled stage ran"
    assert_remote_has_everything(ws)


def test_kill_9_of_the_run_takes_its_workers_and_the_next_run_goes_on(
    ws: Workspace, tmp_path: Path
):
    # the folds trained, not linked back from the DVC cache: their workers are busy when killed
    with uncached(ws, ["TrainFold"], tmp_path / "aside"):
        for family in ORDER[ORDER.index("TrainFold") :]:  # training and all after it, stale
            for stamp in stamps_of(ws, family):
                stamp.unlink(missing_ok=True)
        before = {run.run_id for run in list_runs(ws.runs_dir)}
        proc = start_run(ws, "kill -9", *RUN, "--fold-tasks")
        run = wait_for_start(ws, before, "TrainFold", proc, count=2)  # both folds training
        assert len(psutil.Process(proc.pid).children(recursive=True)) >= 2
        proc.send_signal(signal.SIGKILL)  # the run's own process, not its process group
        proc.wait()
    deadline = time.monotonic() + 60
    while run_processes(run):
        assert time.monotonic() < deadline, "workers outlived the killed run"
        time.sleep(0.1)
    assert not WorkspaceLock(ws.lock_file).is_held(), "the lock went with the run"
    assert "TrainFold" not in outcomes(run, "task_done")
    assert "killed" in run_cli(ws, "runs").stdout
    on_disk = json.loads(run.status.read_text())
    assert on_disk["status"] == "killed", "finalised on disk"
    assert on_disk["reason"].startswith("killed:"), "a kill -9 is not a cancel by SIGTERM"
    errors = [e["error"] for e in read_events(run.events).events if e["event"] == "task_failed"]
    assert errors and not any("SIGTERM" in error for error in errors), errors

    run_cli(ws, "run", *RUN, "--fold-tasks")
    last = list_runs(ws.runs_dir)[0]
    assert read_status(last)["status"] == "ok"
    assert "TrainFold" in outcomes(last, "task_done"), "the killed folds ran again"
    assert leftovers(ws) == []


def set_epochs(ws: Workspace, epochs: int) -> None:
    """[Train] epochs in the workspace's luigi.cfg: a new training to commit."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ws.luigi_cfg)
    config["Train"]["epochs"] = str(epochs)
    with ws.luigi_cfg.open("w") as handle:
        config.write(handle)


def test_a_failed_git_commit_is_made_by_the_next_run(ws: Workspace):
    before = git(ws.root, "rev-parse", "HEAD")
    set_epochs(ws, 2)
    (ws.root / ".git" / "index.lock").write_text("")  # another git process, stuck
    failed = luigi(ws, "VersionModels", env={"KWSOPS_LOCK_WAIT": "2"})
    assert failed.returncode == exitcodes.TASK_FAILED
    events = events_of_last_run(ws)
    assert "VersionModels" in families(events, "task_failed")
    assert "index.lock" in next(e["error"] for e in events if e["event"] == "task_failed")
    key = subprocess.run(
        [sys.executable, "-c", "from tasks import VersionModels; print(VersionModels().version_key)"],
        cwd=ws.root, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    stamp = ws.stamps_dir / "VersionModels.json"
    assert json.loads(stamp.read_text())["key"] != key, "no stamp without its commit"
    assert git(ws.root, "rev-parse", "HEAD") == before
    # what an older kwsops left: the stamp written before the commit that then failed
    stamp.write_text(json.dumps({"key": key, "target": "data/models"}))
    (ws.root / ".git" / "index.lock").unlink()

    done = luigi(ws, "VersionModels")
    assert done.returncode == 0, done.stderr[-3000:]
    assert families(events_of_last_run(ws), "task_done") == {"VersionModels"}
    assert git(ws.root, "rev-parse", "HEAD") != before
    assert "epochs=2" in git(ws.root, "log", "-1", "--format=%s")
    assert git(ws.root, "status", "--porcelain", "--", "data", ".dvcignore") == ""
    committed = git(ws.root, "show", "HEAD:data/models.dvc")
    assert committed == (ws.data_dir / "models.dvc").read_text().strip()
    assert json.loads(stamp.read_text())["commit"] == git(ws.root, "rev-parse", "HEAD")
    again = luigi(ws, "VersionModels")
    assert families(events_of_last_run(ws), "task_up_to_date") == {"VersionModels"}, again.stderr


def cached(ws: Workspace, md5: str) -> bool:
    return (ws.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_gc_removes_old_runs_sessions_and_unused_objects_but_no_revision(ws: Workspace):
    set_epochs(ws, 2)  # a second revision of the models: HEAD~1 holds the first
    assert luigi(ws, "VersionModels").returncode == 0
    extra = ws.input_dir / "catch" / "spk98__extra.wav"
    shutil.copy(next(ws.input_dir.glob("catch/*.wav")), extra)
    assert luigi(ws, "VersionInput").returncode == 0  # versioned, pushed, never committed
    orphan = next(
        line.split(":")[1].strip()
        for line in (ws.data_dir / "input.dvc").read_text().splitlines()
        if "md5:" in line
    )
    extra.unlink()
    assert luigi(ws, "VersionInput").returncode == 0
    assert cached(ws, orphan)
    revisions = [git(ws.root, "show", f"{rev}:data/models.dvc") for rev in ("HEAD", "HEAD~1")]
    models = [line.split(":")[1].strip() for text in revisions
              for line in text.splitlines() if "md5:" in line]  # fmt: skip
    runs = [run.run_id for run in list_runs(ws.runs_dir)]
    zips = list((ws.state_dir / "clearml").rglob("offline-*.zip"))
    assert len(runs) > 3 and zips

    dry = run_cli(ws, "gc", "--keep-runs", "3", "--dvc", "--dry-run")
    assert "would remove" in dry.stdout and "DVC:" in dry.stdout
    assert [run.run_id for run in list_runs(ws.runs_dir)] == runs and cached(ws, orphan)

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom kwsops.runs.lock import WorkspaceLock\n"
         "WorkspaceLock(sys.argv[1]).acquire('busy')\nprint('held', flush=True)\ntime.sleep(60)",
         str(ws.lock_file)], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = run_cli(ws, "gc", check=False)
        assert busy.returncode == exitcodes.ALREADY_RUNNING and "busy" in busy.stderr
    finally:
        holder.kill()
        holder.wait()

    run_cli(ws, "gc", "--keep-runs", "3", "--dvc")
    assert [run.run_id for run in list_runs(ws.runs_dir)] == runs[:3]
    assert not cached(ws, orphan), "an object no commit uses is gone from the cache"
    remote = ws.local_remote_dir / "files" / "md5" / orphan[:2] / orphan[2:]
    assert not remote.exists(), "and from the workspace's own remote"
    assert all(cached(ws, md5) for md5 in models), "every committed revision stays"
    left = [path for path in zips if path.exists()]
    assert not left, f"zips go: {left} left; index: {index_path(ws.root).read_text()}"
    assert all((path.with_suffix("") / "task.json").is_file() for path in zips), "folders stay"
    from kwsops.tracking.index import fetch_artifacts, list_tasks

    task = list_tasks(ws.root, "train model")[0]
    fetched = fetch_artifacts(ws.root, task.task_id, ws.root / "fetched")
    assert set(fetched) == {"fold_0", "fold_1"}
    validate = luigi(ws, "Validate", "--Validate-revisions", '["git:HEAD~1:batch_16"]')
    assert validate.returncode == 0, validate.stderr[-3000:]


def test_a_stop_after_the_run_finished_ok_changes_nothing(ws: Workspace):
    """SIGTERM once `run_finished ok` is written: the run exits 0 as recorded, not 143."""
    before = {run.run_id for run in list_runs(ws.runs_dir)}
    proc = start_run(ws, "SIGTERM", *RUN)
    deadline = time.monotonic() + 300
    while proc.poll() is None:
        new = [run for run in list_runs(ws.runs_dir) if run.run_id not in before]
        if new and "run_finished" in {e["event"] for e in read_events(new[0].events).events}:
            proc.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline, "the run never finished"
        time.sleep(0.005)
    assert proc.wait(timeout=120) == exitcodes.OK
    assert read_status(list_runs(ws.runs_dir)[0])["status"] == "ok"
