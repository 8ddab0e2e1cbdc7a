"""`kwsops gc`: what a workspace may forget, and forgetting it.

Nothing else in kwsops deletes history. This removes, while holding the workspace lock (so no
run writes meanwhile):

- run folders but the newest ``keep_runs`` (never a running one), with the console's launch
  logs of runs that are gone;
- redundant offline ClearML sessions (:mod:`kwsops.tracking.retention`);
- temp files and folders that killed processes left (:func:`kwsops.atomic.remove_leftovers`);
- with ``dvc=True``, DVC objects no git commit and not the workspace references, in the cache
  and in the workspace's own local remote (:func:`kwsops.versioning.dvc.dvc_gc`): every
  training committed to git stays restorable.

``dry_run`` lists the same without deleting anything.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.atomic import OLD_MARK, TMP_MARK, leftover_owner
from kwsops.procs import owner_alive
from kwsops.runs.folder import effective_status, list_runs, read_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.workspace import Workspace

KEEP_RUNS = 50
LAUNCH_LOG_GRACE_S = 3600.0  # a launch log younger than this may belong to a run starting now


@dataclass(frozen=True)
class Removal:
    why: str
    path: Path
    size: int  # bytes


@dataclass
class GcReport:
    removals: list[Removal] = field(default_factory=list)
    dvc_cache: int = 0  # DVC objects
    dvc_remotes: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def size(self) -> int:
        return sum(item.size for item in self.removals)


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def old_runs(ws: Workspace, keep: int) -> list[Removal]:
    """Run folders beyond the newest ``keep``, and launch logs of runs no longer there."""
    runs = list_runs(ws.runs_dir)
    kept = {run.run_id for run in runs[:keep]}
    found = []
    for run in runs[keep:]:
        if effective_status(read_status(run)) == "running":
            kept.add(run.run_id)
            continue
        found.append(Removal(f"older than the newest {keep} runs", run.root, _size(run.root)))
    logs = ws.state_dir / "tui"
    cutoff = time.time() - LAUNCH_LOG_GRACE_S
    for log in sorted(logs.glob("launch-*.log")) if logs.is_dir() else []:
        run_id = log.stem.removeprefix("launch-")
        if run_id not in kept and log.stat().st_mtime < cutoff:
            found.append(Removal(f"launch log of run {run_id}", log, _size(log)))
    return found


def dead_leftovers(ws: Workspace) -> list[Removal]:
    """Temp outputs whose writer is dead (a killed run's), in every folder stages write."""
    folders = [ws.data_dir, ws.reports_dir, ws.stamps_dir, ws.cache_dir, ws.state_dir]
    folders += [p for p in ws.models_dir.glob("batch_*") if p.is_dir()]
    found = []
    for folder in folders:
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            owner = leftover_owner(entry.name)
            if owner is not None and owner_alive(owner) is False:
                mark = TMP_MARK if TMP_MARK in entry.name else OLD_MARK
                why = f"unfinished output ({mark.strip('.-')}) of a dead process"
                found.append(Removal(why, entry, _size(entry)))
    return found


def collect_garbage(
    ws: Workspace, *, keep_runs: int = KEEP_RUNS, dvc: bool = False, dry_run: bool = False
) -> GcReport:
    """Plan, and unless ``dry_run`` do, the removals; raises ``AlreadyRunning`` during a run."""
    from kwsops.tracking.retention import redundant_sessions

    if keep_runs < 0:
        raise ValueError(f"--keep-runs {keep_runs}: keep zero or more runs")
    report = GcReport(dry_run=dry_run)
    with WorkspaceLock(ws.lock_file).held("gc", origin="gc"):
        report.removals += old_runs(ws, keep_runs)
        sessions = redundant_sessions(ws.root)
        report.removals += [Removal(why, path, _size(path)) for why, path in sessions]
        report.removals += dead_leftovers(ws)
        if not dry_run:
            for item in report.removals:
                _delete(item.path)
        if dvc:
            from kwsops.versioning.dvc import dvc_gc

            result = dvc_gc(ws.root, dry_run=dry_run)
            report.dvc_cache, report.dvc_remotes = result.cache, result.remotes
    return report
