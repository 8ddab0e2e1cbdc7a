"""Console benchmark: time to first screen, opening and following a 500 MB log, and the Data
screen over a 100 000-row manifest.

    .venv/bin/python benchmarks/tui.py [--log-mb 500] [--manifest-rows 100000] [--keep]

Prints, for the console (`kwsops.tui.app.KwsApp`, headless via ``run_test`` at 120x40):
- startup: process start -> first screen composed, and -> dashboard showing the workspace;
- a generated log of ``--log-mb`` MB in /tmp (deleted afterwards unless ``--keep``):
  the core index (``kwsops.tui.readers.logindex.LineIndex``): indexing time, tracemalloc peak, RSS delta,
  reading the last screenful, following 10 MB appended;
  the Logs screen: time until the whole log is indexed and the last lines show, RSS delta.
- a generated manifest of ``--manifest-rows`` rows (2 % rejected, 40 clips a speaker): the
  summary the Data screen shows (``kwsops.tui.readers.manifest.read_manifest``, CPU seconds), and the
  Data screen itself: key press -> every label and rejected file on screen.
Each measurement that spans imports runs in a fresh Python process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

START = time.perf_counter()
LINE = "{ts} INFO kwsops.ml.training: TrainFold(batch_size=32, fold={fold}) epoch {epoch}/40 loss {loss:.4f} val_acc {acc:.4f} lr 0.001\n"


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def make_log(path: Path, megabytes: int) -> int:
    """Write a realistic training log of about ``megabytes`` MB; returns its line count."""
    block = "".join(
        LINE.format(
            ts=f"2024-05-01 12:{n // 60 % 60:02d}:{n % 60:02d},{n % 1000:03d}",
            fold=n % 5,
            epoch=n % 40 + 1,
            loss=1 / (n % 97 + 1),
            acc=(n % 89) / 89,
        )
        for n in range(10_000)
    ).encode()
    lines_per_block = 10_000
    target = megabytes * 1_000_000
    written = lines = 0
    with open(path, "wb") as handle:
        while written < target:
            handle.write(block)
            written += len(block)
            lines += lines_per_block
        handle.write(b"2024-05-01 13:00:00,000 ERROR kwsops: the very last line\n")
    return lines + 1


def child(argv: list[str]) -> None:
    """Measurements that must start from a fresh interpreter; prints one JSON object."""
    kind = argv[0]
    if kind == "startup":
        root = Path(argv[1])
        from kwsops.tui.app import KwsApp

        imported = time.perf_counter() - START

        async def measure() -> dict:
            app = KwsApp(root, poll_interval=0.2)
            async with app.run_test(size=(120, 40)) as pilot:
                first = time.perf_counter() - START
                while app.snapshot is None:
                    await pilot.pause(0.005)
                await pilot.pause()
                data = time.perf_counter() - START
            return {"imports": imported, "first_screen": first, "dashboard_data": data}

        print(json.dumps(asyncio.run(measure())))
    elif kind == "core":
        from kwsops.tui.readers.logindex import LineIndex

        path = Path(argv[1])
        before = rss()
        tracemalloc.start()
        index = LineIndex(path)
        began = time.perf_counter()
        for _ in index.index_all():
            pass
        lines = index.line_count
        indexed = time.perf_counter() - began
        began = time.perf_counter()
        tail = index.lines(index.line_count - 40, 40)
        read_tail = time.perf_counter() - began
        with open(path, "ab") as handle:
            handle.write(b"appended line\n" * 750_000)  # ~10 MB
        began = time.perf_counter()
        update = index.update()
        follow = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
        print(
            json.dumps(
                {
                    "lines": lines,
                    "index_s": indexed,
                    "tail_ms": read_tail * 1e3,
                    "tail_ok": "very last line" in tail[-1],
                    "follow_10mb_s": follow,
                    "follow_new_lines": update.new_lines,
                    "tracemalloc_peak": peak,
                    "rss_delta": rss() - before,
                    "checkpoints": index.checkpoints,
                }
            )
        )
    elif kind == "widget":
        root = Path(argv[1])
        from kwsops.tui.app import KwsApp
        from kwsops.tui.widgets.logview import LogView

        handled: list[tuple[float, int]] = []  # (when, lines) as the view takes each step
        original = LogView.on_log_indexed

        def on_log_indexed(self, message) -> None:
            original(self, message)
            handled.append((time.perf_counter(), self.line_count))

        LogView.on_log_indexed = on_log_indexed

        async def measure() -> dict:
            app = KwsApp(root, poll_interval=0.2)
            async with app.run_test(size=(120, 40)) as pilot:
                while app.snapshot is None:
                    await pilot.pause(0.01)
                before = rss()
                began = time.perf_counter()
                await pilot.press("2")
                shown = time.perf_counter() - began
                view = app.screen.query_one(LogView)
                while view.fraction < 1 or view.line_count == 0:
                    await pilot.pause(0.01)
                done = max(when for when, _ in handled) - began
                first_lines = min(when for when, lines in handled if lines) - began
                await pilot.pause(0.2)
                last = view.index.line(view.line_count - 1)
                return {
                    "screen_s": shown,
                    "first_lines_s": first_lines,
                    "indexed_s": done,
                    "lines": view.line_count,
                    "at_end": view.scroll_y == view.max_scroll_y,
                    "last_line_ok": "very last line" in last,
                    "rss_delta": rss() - before,
                }

        print(json.dumps(asyncio.run(measure())))
    elif kind == "data":
        root = Path(argv[1])
        from kwsops.tui.app import KwsApp
        from kwsops.tui.readers.manifest import read_manifest
        from kwsops.tui.screens.data import DataScreen

        began = time.process_time()
        summary = read_manifest(root / "data" / "output" / "manifest.csv")
        summary_cpu = time.process_time() - began

        async def measure(settle: float) -> dict:
            """Press 5 ``settle`` s after the dashboard has its data: 0, while the app's
            read-ahead of the manifest (started with the app) is still at work; 2, after it."""
            app = KwsApp(root, poll_interval=0.2)
            async with app.run_test(size=(120, 40)) as pilot:
                while app.snapshot is None:
                    await pilot.pause(0.01)
                if settle:
                    await pilot.pause(settle)
                began = time.perf_counter()
                await pilot.press("5")
                screen = app.screen
                assert isinstance(screen, DataScreen), screen
                table = screen.query_one("#rejected")
                while table.row_count < len(summary.rejected):
                    await pilot.pause(0.005)
                await pilot.pause()
                return {
                    "open_s": time.perf_counter() - began,
                    "rows": summary.total,
                    "rejected": table.row_count,
                    "labels": screen.query_one("#labels").row_count,
                }

        cold, warm = asyncio.run(measure(0)), asyncio.run(measure(2.0))
        print(json.dumps({"summary_cpu_s": summary_cpu, **cold, "open_warm_s": warm["open_s"]}))


def make_manifest(path: Path, rows: int) -> None:
    """A Speech Commands-sized manifest: six labels, 40 clips a speaker, 2 % rejected."""
    from kwsops.audio.manifest import ManifestRow, write_manifest

    labels = ("catch", "gun", "index", "like", "relax", "rock")
    written = []
    for n in range(rows):
        label, speaker = labels[n % 6], f"spk{n // 40:05d}"
        source = f"{label}/{speaker}_nohash_{n}.wav"
        common = {"duration_in": 1.0 + n % 7 / 10, "sample_rate_in": 16000, "channels_in": 1}
        if n % 50 == 0:
            row = ManifestRow(source, label, speaker, "rejected", "too short: 0.05 s", **common)
        else:
            output = f"{label}/{speaker}_nohash_{n}-0123456789.wav"
            row = ManifestRow(
                source, label, speaker, "kept", output=output, duration_out=0.8, **common
            )
        written.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(written, path)


def run_child(*args: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,  # a hung measurement is a failure, not a wait
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def workspace_with_log(root: Path, log: Path) -> None:
    run = root / "reports" / "runs" / "20240501-120000-beef"
    run.mkdir(parents=True)
    (run / "params.json").write_text(json.dumps({"batch_sizes": [32], "origin": "cli"}))
    (run / "status.json").write_text(
        json.dumps({"status": "ok", "started": 1714564800, "duration": 3600.0, "exit_code": 0})
    )
    os.link(log, run / "run.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-mb", type=int, default=500)
    parser.add_argument("--manifest-rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="kwsops-tui-bench-", dir="/tmp"))
    try:
        small = scratch / "small-ws"
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.helpers.tui_workspace import make_workspace

        make_workspace(small, active=False)
        runs = [run_child("startup", str(small)) for _ in range(3)]
        best = min(runs, key=lambda r: r["first_screen"])
        print(
            f"startup (best of 3, fresh process, 120x40 headless): imports "
            f"{best['imports']:.2f} s, first screen {best['first_screen']:.2f} s, dashboard "
            f"with data {best['dashboard_data']:.2f} s"
        )

        log = scratch / "run.log"
        began = time.perf_counter()
        lines = make_log(log, args.log_mb)
        size = log.stat().st_size
        print(
            f"log: {size / 1e6:.0f} MB, {lines:,} lines (written in "
            f"{time.perf_counter() - began:.1f} s)"
        )
        core = run_child("core", str(log))
        print(
            f"core index: {core['index_s']:.2f} s for {core['lines']:,} lines "
            f"({size / 1e6 / core['index_s']:.0f} MB/s), {core['checkpoints']:,} checkpoints, "
            f"tracemalloc peak {core['tracemalloc_peak'] / 1e6:.1f} MB, RSS delta "
            f"{core['rss_delta'] / 1e6:.1f} MB; last 40 lines in {core['tail_ms']:.2f} ms "
            f"(ok={core['tail_ok']}); follow +10 MB: {core['follow_10mb_s'] * 1e3:.0f} ms "
            f"for {core['follow_new_lines']:,} new lines"
        )
        wide = scratch / "ws"
        make_log(log, args.log_mb)  # the core run appended to it: start again from 500 MB
        workspace_with_log(wide, log)
        widget = run_child("widget", str(wide), str(log))
        print(
            f"Logs screen: shown after {widget['screen_s']:.2f} s, first lines after "
            f"{widget['first_lines_s']:.2f} s, whole log indexed "
            f"and following its end after {widget['indexed_s']:.2f} s (at end="
            f"{widget['at_end']}, last line ok={widget['last_line_ok']}), RSS delta "
            f"{widget['rss_delta'] / 1e6:.1f} MB"
        )
        data_ws = scratch / "data-ws"
        make_workspace(data_ws, active=False, manifest=False)
        make_manifest(data_ws / "data" / "output" / "manifest.csv", args.manifest_rows)
        data = run_child("data", str(data_ws))
        print(
            f"Data screen, {data['rows']:,}-row manifest: summary {data['summary_cpu_s']:.2f} "
            f"CPU s; key press -> {data['labels']} labels and {data['rejected']:,} rejected "
            f"files on screen after {data['open_warm_s']:.2f} s (the manifest read ahead), "
            f"{data['open_s']:.2f} s when pressed as the dashboard first shows its data "
            f"(the read-ahead still at work)"
        )
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
