"""Realistic workspace fixtures for the console tests: run folders as `kwsops run` writes them
(params.json, status.json, events.jsonl, run.log), a manifest and a comparison report.

Also usable by hand: `python tests/test_tui_support.py /tmp/ws` builds one to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kwsops.procs import identity
from kwsops.runs.events import EventLog
from kwsops.runs.folder import RunPaths

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: every fixture time is relative to it
NOW = T0 + 3 * 3600 + 754.0
RUN_OK = "20231114-221320-aaaa"
RUN_FAILED = "20231115-001320-bbbb"
RUN_ACTIVE = "20231115-011320-cccc"
LABELS = ("catch", "gun", "index", "like", "relax", "rock")

REPORT = """\
# Comparison of model revisions

Test set: 24 clips, 6 labels. Revisions compared: workspace:batch_16, workspace:batch_32.

## Summary

| revision | accuracy | macro F1 | folds |
| --- | ---: | ---: | ---: |
| workspace:batch_16 | 0.917 | 0.914 | 2 |
| workspace:batch_32 | 0.875 | 0.871 | 2 |

## workspace:batch_16

### Confusion matrix

| true \\\\ predicted | catch | gun | index | like | relax | rock |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| catch | 4 | 0 | 0 | 0 | 0 | 0 |
| gun | 0 | 4 | 0 | 0 | 0 | 0 |
| index | 0 | 1 | 3 | 0 | 0 | 0 |
| like | 0 | 0 | 0 | 4 | 0 | 0 |
| relax | 0 | 0 | 0 | 0 | 3 | 1 |
| rock | 0 | 0 | 0 | 0 | 0 | 4 |

## workspace:batch_32

### Confusion matrix

| true \\\\ predicted | catch | gun | index | like | relax | rock |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| catch | 4 | 0 | 0 | 0 | 0 | 0 |
| gun | 1 | 3 | 0 | 0 | 0 | 0 |
| index | 0 | 1 | 3 | 0 | 0 | 0 |
| like | 0 | 0 | 0 | 4 | 0 | 0 |
| relax | 0 | 0 | 0 | 0 | 3 | 1 |
| rock | 0 | 0 | 0 | 0 | 0 | 4 |
"""


def event(path: Path, ts: float, kind: str, **fields: object) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"ts": ts, "event": kind, **fields}) + "\n")


def log_line(path: Path, ts: float, text: str, level: str = "INFO") -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{stamp},000 {level} kwsops: {text}\n")


def task_id(family: str, **params: object) -> str:
    suffix = "_".join(str(v) for v in params.values())
    return f"{family}_{suffix}_0123456789" if suffix else f"{family}__99914b932b"


def write_run(
    root: Path,
    run_id: str,
    start: float,
    *,
    status: str,
    batch_sizes=(16, 32),
    folds: int = 2,
    fail_at: str | None = None,
    stop_after: int | None = None,
    pid: int | None = None,
) -> RunPaths:
    """A run folder; ``stop_after`` tasks then the run is still going (status running)."""
    paths = RunPaths(root / "reports" / "runs" / run_id)
    paths.root.mkdir(parents=True)
    params = {
        "run_id": run_id,
        "origin": "tui",
        "target": "Validate",
        "batch_sizes": list(batch_sizes),
        "epochs": 3,
        "folds": folds,
        "learning_rate": 0.001,
        "revisions": ["git:1a2b3c4:batch_32"],
    }
    paths.params.write_text(json.dumps(params))
    ts = start
    event(paths.events, ts, "run_started", run_id=run_id, params=params, pid=pid or 1, origin="tui")
    log_line(paths.log, ts, f"run {run_id} started: batch sizes {list(batch_sizes)}")
    plan: list[tuple[str, dict, str, dict]] = [
        ("VersionInput", {}, "input unchanged", {}),
        ("Preprocess", {}, "kept 34, rejected 2", {"kept": 34, "rejected": 2}),
        ("VersionOutput", {}, "pushed 34 clips", {}),
        ("MakeSpectrograms", {}, "train 30 · test 4", {}),
        ("VersionSpectrograms", {}, "pushed", {}),
    ]
    for bs in batch_sizes:
        for fold in range(folds):
            plan.append(
                (
                    "TrainFold",
                    {"batch_size": bs, "fold": fold},
                    f"3 epochs · val_acc 0.{80 + fold + bs % 7}",
                    {"val_accuracy": round(0.8 + fold / 100 + bs / 1000, 3)},
                )
            )
    for bs in batch_sizes:
        plan.append(
            ("Train", {"batch_size": bs}, f"{folds} folds", {"mean_accuracy": 0.81 + bs / 1000})
        )
    plan += [
        ("VersionModels", {}, "commit 1a2b3c4", {}),
        (
            "Validate",
            {},
            "best workspace:batch_16: accuracy 0.917 (2 revisions, 24 test clips)",
            {"best": "workspace:batch_16", "accuracy": 0.917},
        ),  # fmt: skip
    ]
    for number, (family, task_params, detail, summary) in enumerate(plan):
        if stop_after is not None and number >= stop_after:
            tid = task_id(family, **task_params)
            event(
                paths.events,
                ts,
                "task_started",
                task=tid,
                family=family,
                params={k: str(v) for k, v in task_params.items()},
            )
            event(
                paths.events,
                ts + 5,
                "task_progress",
                task=tid,
                family=family,
                done=2,
                total=3,
                detail="epoch 2/3",
                metrics={"epoch": 2, "val_accuracy": 0.734},
            )
            log_line(paths.log, ts + 5, f"{family} epoch 2/3 val_accuracy 0.734")
            break
        tid = task_id(family, **task_params)
        if family == "VersionInput":
            event(paths.events, ts, "task_up_to_date", task=tid, family=family)
            continue
        event(
            paths.events,
            ts,
            "task_started",
            task=tid,
            family=family,
            params={k: str(v) for k, v in task_params.items()},
        )
        log_line(paths.log, ts, f"{family} {task_params or ''} started")
        duration = 12.5 + 3 * number
        ts += duration
        if family == fail_at:
            event(
                paths.events,
                ts,
                "task_failed",
                task=tid,
                family=family,
                duration=duration,
                error="RuntimeError: spectrogram folder is empty",
            )
            log_line(
                paths.log,
                ts,
                f"{family} failed: RuntimeError: spectrogram folder is empty",
                "ERROR",
            )
            break
        if family == "TrainFold":  # one event per epoch: the console's training curves
            for epoch in (1, 2, 3):
                acc = round(0.5 + 0.1 * epoch + task_params["fold"] / 50, 3)
                event(paths.events, ts - 4 + epoch, "task_progress", task=tid, family=family,
                      metrics={"epoch": epoch, "val_acc": acc, "val_loss": round(2 - acc, 3)})  # fmt: skip
        event(
            paths.events,
            ts,
            "task_done",
            task=tid,
            family=family,
            duration=duration,
            detail=detail,
            summary=summary,
        )
        log_line(paths.log, ts, f"{family} done: {detail}")
    state: dict = {"run_id": run_id, "status": status, "started": start, "pid": pid or 1}
    if pid:  # as kwsops writes it: the process by pid and start time
        state.update(identity(pid))
    if status != "running":
        event(
            paths.events,
            ts + 1,
            "run_finished",
            status=status,
            exit_code=0 if status == "ok" else 1,
            duration=ts + 1 - start,
        )
        state.update(
            exit_code=0 if status == "ok" else 1, finished=ts + 1, duration=round(ts + 1 - start, 3)
        )
    paths.status.write_text(json.dumps(state))
    return paths


def write_manifest(root: Path) -> Path:
    path = root / "data" / "output" / "manifest.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        "source,label,speaker,status,reason,output,duration_in,duration_out,"
        "sample_rate_in,channels_in"
    ]
    for li, label in enumerate(LABELS):
        for n in range(6):
            speaker = f"spk{n % 3:02d}"
            dur = 0.9 + 0.11 * n + 0.05 * li
            rows.append(
                f"{label}/{speaker}__{label}_{n:03d}.wav,{label},{speaker},kept,,"
                f"{label}/{speaker}__{label}_{n:03d}.wav,{dur:.3f},{dur - 0.3:.3f},22050,1"
            )
    rows.append(
        "gun/spk09__gun_long.ogg,gun,spk09,rejected,too long: 3.41 s > 2.60 s,,3.410,,48000,2"
    )
    rows.append("Whatsapp/loose.opus,,,rejected,no label folder,,1.200,,48000,1")
    rows.append(
        "relax/spk01__relax_broken.wav,relax,spk01,rejected,unreadable: not a RIFF file,,,,,"
    )
    path.write_text("\n".join([rows[0], *sorted(rows[1:])]) + "\n")
    return path


def make_workspace(
    root: Path, *, active: bool = True, report: bool = True, manifest: bool = True
) -> Path:
    """A workspace with an ok run, a failed run and (``active``) a running one."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".dvc").mkdir(exist_ok=True)
    (root / "luigi.cfg").write_text(
        "[core]\nlocal_scheduler = true\n\n[Train]\nepochs = 3\nfolds = 2\n"
    )
    ok = write_run(root, RUN_OK, T0, status="ok")
    (ok.root / "report.md").write_text("# Run report\n\nAll stages done.\n")
    write_run(root, RUN_FAILED, T0 + 7200, status="failed", fail_at="MakeSpectrograms")
    if active:
        write_run(root, RUN_ACTIVE, T0 + 3 * 3600, status="running", stop_after=7, pid=os.getpid())
    if report:
        from tests.helpers.comparison import make_comparison

        (root / "reports").mkdir(exist_ok=True)
        (root / "reports" / "comparison_versions.md").write_text(REPORT)
        (root / "reports" / "comparison_versions.json").write_text(json.dumps(make_comparison()))
    if manifest:
        write_manifest(root)
    return root


def append_event(paths: RunPaths, kind: str, **fields: object) -> None:
    EventLog(paths.events).emit(kind, **fields)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/kwsops-tui-demo")
    make_workspace(target)
    print(target)
