"""`kwsops registry`: the model's versions, their stages, scores and who promoted them when."""

from __future__ import annotations

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
    from kwsops.registry.card import comparison_entry, miss_rate, pct
    from kwsops.versioning.tags import read_versions

    rows = []
    for version in read_versions(ws.root):
        entry = comparison_entry(ws, [version.revision])
        accuracy = version.scores.get("accuracy")
        if accuracy is None and entry:
            accuracy = entry.get("ensemble_accuracy", {}).get("mean")
        miss = version.scores.get("miss_rate")
        if miss is None:
            miss = miss_rate(entry)
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
