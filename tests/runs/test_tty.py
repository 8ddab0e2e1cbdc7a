"""`kwsops run` under a real pseudo-terminal, where it draws its live display while Luigi forks
workers: a worker never writes through the display (whose lock its thread may hold at the
fork), and runs in a row all finish. Real DVC, ClearML (offline), two forked workers.

Each test has its own workspace (a copy of the session's `kwsops init` template).
"""

from __future__ import annotations

import configparser
import fcntl
import os
import pty
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from kwsops.runs.folder import list_runs, read_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.workspace import Workspace

pytestmark = pytest.mark.slow

RUN_LIMIT_S = 120.0  # one run here takes seconds; a hung one would take forever
# runs in a row under the terminal: a hang at the fork is a race, so a few runs sample it each
# time the suite runs (twenty, once, took most of a minute; `KWSOPS_TEST_TTY_RUNS=20` for more)
TTY_RUNS = int(os.environ.get("KWSOPS_TEST_TTY_RUNS", "3"))
# a demo mp3 with bytes flipped: libmpg123 prints errors on stderr while it decodes it
NOISY = "like/spk09__garbled.mp3"


def garble(source: Path, target: Path) -> None:
    data = bytearray(source.read_bytes())
    rng = random.Random(0)
    for _ in range(40):
        data[rng.randrange(200, len(data))] ^= 0xFF
    target.write_bytes(bytes(data))


def run_in_terminal(ws: Workspace, *args: str) -> tuple[int, str]:
    """`kwsops run ARGS` with a pseudo-terminal for stdin, stdout and stderr: (code, screen)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kwsops.cli", "-C", str(ws.root), "run", *args],
        cwd=ws.root,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"},
    )
    os.close(slave)
    screen = bytearray()
    deadline = time.monotonic() + RUN_LIMIT_S
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    chunk = b""
                screen += chunk
                if not chunk and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError(f"run hung under a terminal:\n{screen[-2000:].decode()}")
    finally:
        os.close(master)
    return proc.wait(), screen.decode("utf-8", "replace")


@pytest.fixture
def ws(tmp_path: Path, demo_source: Path, new_workspace) -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    others = [p.relative_to(demo_source).as_posix() for p in sorted(demo_source.glob("*/*.wav"))]
    for rel in [r for r in others if r.startswith(("like/", "gun/"))][:3]:
        (ws.input_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo_source / rel, ws.input_dir / rel)
    garble(next(iter(sorted(demo_source.glob("*/*.mp3")))), ws.input_dir / NOISY)
    config = configparser.ConfigParser(interpolation=None)
    config.read(ws.luigi_cfg)
    config["Preprocess"]["processes"] = "1"  # decode in the forked worker itself
    config["core"]["workers"] = "2"
    with ws.luigi_cfg.open("w") as handle:
        config.write(handle)
    return ws


def test_a_forked_workers_output_goes_to_the_run_log_not_the_terminal(ws: Workspace):
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from kwsops.audio.clip import decode; "
         "decode(sys.argv[1])", str(ws.input_dir / NOISY)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if "mpg123" not in probe.stderr:
        pytest.skip(f"this libsndfile decodes {NOISY} silently: no worker output to follow")
    code, screen = run_in_terminal(ws, "--target", "Preprocess")
    assert code == 0, screen[-3000:]
    assert "Preprocess" in screen and " kept, " in screen  # the live view and its table
    assert "mpg123" not in screen, "a worker wrote to the terminal the display draws on"
    assert "mpg123" in list_runs(ws.runs_dir)[0].log.read_text()


def test_runs_in_a_row_under_a_terminal_all_finish(ws: Workspace):
    """Each run forks a worker for VersionInput (its stamp removed: dvc add and push again)
    while the display's threads draw; none may hang, each frees the lock."""
    stamp = ws.stamps_dir / "VersionInput.json"
    started = time.monotonic()
    for attempt in range(TTY_RUNS):
        stamp.unlink(missing_ok=True)
        code, screen = run_in_terminal(ws, "--target", "VersionInput", "--workers", "2")
        assert code == 0, f"run {attempt}: {screen[-3000:]}"
        assert read_status(list_runs(ws.runs_dir)[0])["status"] == "ok"
        assert not WorkspaceLock(ws.lock_file).is_held()
    assert len(list_runs(ws.runs_dir)) == TTY_RUNS
    print(f"{TTY_RUNS} terminal runs in {time.monotonic() - started:.0f} s")
