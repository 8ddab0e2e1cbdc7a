"""`kwsops registry`: the model's versions, their stages, scores and who promoted them when."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kwsops.workspace import Workspace

MISSING = "—"


@dataclass(frozen=True)
class RegistryRow:
    version: str  # kws@v1.2.0
    stages: str  # production, staging
    revision: str
    accuracy: str  # 93.1 %, or —
    miss_rate: str
    promoted_by: str
    promoted_at: str  # 2026-12-07 19:01 UTC


def registry_rows(ws: Workspace) -> list[RegistryRow]:
    """One row per registered version, newest first (read back through gto's API)."""
    from kwsops.registry.card import comparison_entry, pct
    from kwsops.versioning.tags import read_versions

    rows = []
    for version in read_versions(ws.root):
        entry = comparison_entry(ws, [version.revision])
        accuracy = version.scores.get("accuracy")
        if accuracy is None and entry:
            accuracy = entry.ensemble_accuracy.mean
        miss = version.scores.get("miss_rate")
        if miss is None and entry:
            miss = entry.miss_rate
        when = version.promoted_at or version.created
        rows.append(
            RegistryRow(
                version=version.ref,
                stages=", ".join(version.stages) or MISSING,
                revision=version.revision or MISSING,
                accuracy=pct(accuracy),
                miss_rate=pct(miss),
                promoted_by=version.promoted_by or version.author or MISSING,
                promoted_at=when.strftime("%Y-%m-%d %H:%M %Z").strip() if when else MISSING,
            )
        )
    return rows


@dataclass(frozen=True)
class Production:
    """The version in the production stage and the run whose VersionModels made its commit."""

    ref: str  # kws@v1.2.0
    commit: str
    run_id: str | None


def producing_run(ws: Workspace, commits: set[str], limit: int = 200) -> str | None:
    """The newest run whose VersionModels committed one of ``commits`` (its events say so)."""
    from kwsops.runs.folder import list_runs

    for paths in list_runs(ws.runs_dir, limit=limit):
        events = paths.events
        try:
            raw = events.read_bytes()
        except OSError:
            continue
        if not any(c.encode() in raw for c in commits):  # most runs: one scan, no JSON
            continue
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            summary = event.get("summary") if isinstance(event, dict) else None
            if (event.get("event") == "task_done" and isinstance(summary, dict)
                    and summary.get("commit") in commits):  # fmt: skip
                return paths.run_id
    return None


def production(ws: Workspace) -> Production | None:
    """What the console shows: the production version and the run that produced it."""
    from kwsops.compare.revisions import RevisionError, parse_spec
    from kwsops.versioning.errors import VersioningError
    from kwsops.versioning.tags import RegistryError, has_stage, in_stage

    try:  # one git call first: most workspaces have promoted nothing
        version = in_stage(ws.root) if has_stage(ws.root) else None
    except (RegistryError, VersioningError, OSError):
        return None
    if version is None:
        return None
    commits = {version.commit}
    try:
        kind, parts = parse_spec(version.revision)
        if kind == "git":
            commits.add(parts["rev"])
    except RevisionError:
        pass
    return Production(version.ref, version.commit, producing_run(ws, commits))
