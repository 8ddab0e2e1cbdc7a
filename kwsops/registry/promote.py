"""`kwsops promote`: register a revision as a version of the model and give it a stage.

Any revision form the comparison accepts is promoted as the git commit that holds its models:
a workspace revision is versioned and committed first when it is not yet (``dvc add`` + push
to the default remote and a commit of the .dvc files, as VersionModels does), a git revision is
its commit, a ClearML revision is tagged on HEAD and named in the version's message. Then the
version is exported (ONNX and its card, :mod:`kwsops.registry.export`) and a ClearML
``promote model`` task, tagged with the version and stage, keeps both files as artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass

from kwsops.progress import ProgressFn, no_progress
from kwsops.workspace import Workspace

PROMOTE_TASK = "promote model"


@dataclass
class PromoteResult:
    version: object  # kwsops.versioning.tags.RegistryVersion
    stage: str | None
    committed: str | None  # the commit made for a workspace revision, if one was needed
    export: object | None = None  # kwsops.registry.export.ExportResult
    task_id: str = ""  # the ClearML `promote model` task
    export_error: str = ""


def _commit_workspace(ws: Workspace, batch: str) -> tuple[str, str | None]:
    """(the commit holding data/models as the workspace has it, the commit made or None)."""
    from kwsops.pipeline.version import revision_files
    from kwsops.versioning.dvc import version_stage
    from kwsops.versioning.git import git_commit, resolve_commit

    version_stage(ws.root, "data/models")
    made = git_commit(ws.root, revision_files(ws), f"kwsops: models of {batch}, to promote")
    sha = made or resolve_commit(ws.root, "HEAD")
    if sha is None:
        raise ValueError(f"{ws.root}: git has no commit to tag; run `kwsops run` first")
    return sha, made


def scores_of(ws: Workspace, specs: list[str]) -> dict:
    """Accuracy and miss rate of a revision in the last comparison (what is there)."""
    from kwsops.registry.card import comparison_entry

    entry = comparison_entry(ws, specs)
    if entry is None:
        return {}
    scores = {"accuracy": entry.ensemble_accuracy.mean, "miss_rate": entry.miss_rate}
    return {k: round(float(v), 6) for k, v in scores.items() if v is not None}


def promote_revision(
    ws: Workspace,
    spec: str,
    stage: str | None = "production",
    version: str | None = None,
    *,
    export: bool = True,
    progress: ProgressFn = no_progress,
) -> PromoteResult:
    from kwsops.compare.revisions import resolve_revisions
    from kwsops.runs.lock import WorkspaceLock
    from kwsops.versioning.tags import check_stage, check_version, model_name

    name = model_name(ws.root)  # a bad name or stage fails before anything is written
    stage = check_stage(stage) if stage else None
    version = check_version(version) if version else None
    resolved = resolve_revisions(ws, [spec], [])
    if len(resolved) != 1:
        raise ValueError(f"revision {spec} names {len(resolved)} model sets; promote one")
    revision = resolved[0]
    progress(0, 3, f"registering {spec}")
    # a run commits and tags too: not while one is active (AlreadyRunning, exit 3)
    with WorkspaceLock(ws.lock_file).held("promote", origin="promote"):
        registered, committed = _register(ws, revision, name, stage, version)
    result = PromoteResult(registered, stage, committed)
    if export:
        progress(1, 3, f"exporting {registered.ref}")
        _export_and_track(ws, result, progress)
    progress(3, 3, f"{registered.ref} promoted")
    return result


def _register(ws: Workspace, revision, name: str, stage: str | None, version: str | None):
    from kwsops.versioning.git import resolve_commit
    from kwsops.versioning.tags import promote

    committed = None
    if revision.kind == "workspace":
        commit, committed = _commit_workspace(ws, revision.batch)
        target = f"git:{commit}:{revision.batch}"
    elif revision.kind == "git":
        commit, target = revision.sha, revision.spec
    else:
        commit = resolve_commit(ws.root, "HEAD") or ""
        if not commit:
            raise ValueError(f"{ws.root}: git has no commit to tag; run `kwsops run` first")
        target = revision.spec
    scores = scores_of(ws, [revision.spec, revision.requested, target])
    registered = promote(ws.root, commit, target, stage=stage, version=version, scores=scores,
                         name=name)  # fmt: skip
    return registered, committed


def _export_and_track(ws: Workspace, result: PromoteResult, progress: ProgressFn) -> None:
    from kwsops.registry.export import ExportError, export_revision
    from kwsops.tracking.tracker import stage_task

    version = result.version
    tags = [version.ref, *([result.stage] if result.stage else [])]
    params = {"version": version.ref, "revision": version.revision, "commit": version.commit,
              "stage": result.stage or ""}  # fmt: skip
    with stage_task(ws.root, PROMOTE_TASK, "custom", params, tags=tags) as tracker:
        try:
            result.export = export_revision(ws, version.ref)
        except (ExportError, ValueError, OSError) as exc:
            result.export_error = str(exc)
            tracker.outcome("failed", result.export_error)
        else:
            progress(2, 3, "uploading the ONNX file and its card to ClearML")
            tracker.artifact("model.onnx", result.export.path)
            tracker.artifact("model_card.md", result.export.card)
            for key, value in version.scores.items():
                tracker.single(key, value)
        result.task_id = tracker.record.task_id
