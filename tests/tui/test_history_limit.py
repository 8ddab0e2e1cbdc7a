"""The console's monitor reads the newest runs only: a workspace with years of runs costs it
no more than one with two hundred, twice a second."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from kwsops.runs.folder import create_run
from kwsops.tui.readers.monitor import HISTORY_LIMIT, Monitor
from kwsops.workspace import Workspace


def test_the_monitor_lists_the_newest_runs_and_never_reads_older_ones(tmp_path: Path):
    ws = Workspace(tmp_path / "ws")
    total = HISTORY_LIMIT + 5
    ids = [
        f"2025{1 + i // 28 % 12:02d}{1 + i % 28:02d}-{i // 336:02d}0000-aaaa" for i in range(total)
    ]
    for run_id in ids:
        paths = create_run(ws.runs_dir, {"epochs": 1}, "cli", run_id=run_id)
        (paths.root / "status.json").write_text('{"status": "ok", "exit_code": 0}')
    oldest = sorted(ids)[:5]
    fifos = [ws.runs_dir / run_id / "status.json" for run_id in oldest]
    for fifo in fifos:  # a reader of these would block: the monitor must not read them
        fifo.unlink()
        os.mkfifo(fifo)
    found: list = []
    poller = threading.Thread(target=lambda: found.append(Monitor(ws).poll()), daemon=True)
    poller.start()
    poller.join(30)
    if poller.is_alive():
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not poller.is_alive(), "the monitor read an old run's status"
    history = [run.run_id for run in found[0].history]
    assert history == sorted(ids, reverse=True)[:HISTORY_LIMIT]
