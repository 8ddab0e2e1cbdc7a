"""Model revisions: parse a spec, resolve it to what it names, fetch its fold models.

A revision is one trained set of fold models for one batch size (DESIGN.md "Model revisions"):

- ``workspace:batch_32``   the current data/models/batch_32
- ``git:<rev>:batch_32``   data/models/batch_32 as committed at a git revision (DVC cache/remote)
- ``clearml:<task-id>``    the fold artifacts of a `train model` task (online or offline session)
- ``last:N``               the last N `train model` tasks, each as ``clearml:<task-id>``
- ``kws@v1.2.0``, ``kws#production``  a registered version, or the one in a stage
  (:mod:`kwsops.versioning.tags`): the revision it was promoted from

``resolve_revisions`` is cheap (git rev-parse, the ClearML index, small file hashes) so the
Validate stamp key can name exactly what was compared; ``materialise`` does the fetching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.stamps import file_sha256
from kwsops.versioning.git import has_file, resolve_commit
from kwsops.versioning.runner import run_git
from kwsops.workspace import Workspace

TRAIN_TASK = "train model"
_BATCH = r"batch_\d+"
_FORMS = {
    "workspace": re.compile(rf"^workspace:(?P<batch>{_BATCH})$"),
    # a rev never starts with "-", so it can never be read as an option by git or dvc
    "git": re.compile(rf"^git:(?P<rev>[\w./@^~{{}}][\w./@^~{{}}:-]*):(?P<batch>{_BATCH})$"),
    "clearml": re.compile(r"^clearml:(?P<task>[\w-]+)$"),
    "last": re.compile(r"^last:(?P<n>[1-9]\d{0,2})$"),
    "registry": re.compile(r"^(?P<ref>[a-z0-9][a-z0-9/-]*(@v?\d+\.\d+\.\d+|#[a-z0-9-]+))$"),
}
FORMS_HELP = (
    "workspace:batch_32, git:<rev>:batch_32, clearml:<task-id>, last:N, kws@v1.2.0 or "
    "kws#production"
)
_FOLD = re.compile(r"^fold_(\d+)$")


class RevisionError(ValueError):
    """A revision cannot be parsed, found or fetched; the message names it and what was tried."""


@dataclass(frozen=True)
class ResolvedRevision:
    """What a revision spec names, pinned: a git sha, a task id, the files' hashes."""

    spec: str  # canonical: workspace:batch_32 | git:<sha>:batch_32 | clearml:<task-id>
    kind: str  # workspace | git | clearml
    requested: str  # as the user wrote it (e.g. last:3, git:HEAD~1:batch_32)
    batch: str = ""  # batch_32 (workspace, git)
    sha: str = ""  # git
    task_id: str = ""  # clearml
    fingerprint: str = ""  # what the stamp key needs beyond the spec
    origin: dict = field(default_factory=dict)  # how to open it: web_url, session, commit ...

    def key(self) -> dict:
        return {"spec": self.spec, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class FetchedRevision:
    revision: ResolvedRevision
    model_paths: list[Path]  # one per fold, in fold order


def is_valid_spec(spec: str) -> bool:
    """Whether ``spec`` is written in one of the revision forms (nothing is looked up)."""
    return any(form.match(str(spec).strip()) for form in _FORMS.values())


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    spec = str(spec).strip()
    for kind, form in _FORMS.items():
        match = form.match(spec)
        if match:
            return kind, match.groupdict()
    raise RevisionError(f"revision {spec!r} is not valid; use {FORMS_HELP}")


def default_specs(batch_sizes: list[int]) -> list[str]:
    return [f"workspace:batch_{int(b)}" for b in batch_sizes]


def trained_batch_sizes(ws: Workspace) -> list[int]:
    """The batch sizes data/models holds fold models of (``batch_<bs>/fold_<k>/``), smallest
    first: what `kwsops validate` compares when no revision or batch size is named."""
    if not ws.models_dir.is_dir():
        return []
    found = (
        (re.fullmatch(r"batch_(\d+)", p.name), p) for p in ws.models_dir.iterdir() if p.is_dir()
    )
    return sorted(int(m.group(1)) for m, p in found if m and _fold_files(p))


def _fold_files(folder: Path) -> list[Path]:
    folds = sorted(
        (int(m.group(1)), p / "model.safetensors")
        for p in folder.iterdir()
        if p.is_dir() and (m := _FOLD.match(p.name))
    )
    return [path for _, path in folds if path.is_file()]


def _resolve_workspace(ws: Workspace, spec: str, batch: str) -> ResolvedRevision:
    folder = ws.models_dir / batch
    files = _fold_files(folder) if folder.is_dir() else []
    if not files:
        raise RevisionError(
            f"revision {spec}: no fold models in {folder} (looked for fold_*/model.safetensors); "
            "train that batch size first"
        )
    digests = [f"{p.parent.name}:{file_sha256(p)}" for p in files]
    origin = {"path": str(folder)}
    return ResolvedRevision(spec, "workspace", spec, batch, fingerprint=",".join(digests),
                            origin=origin)  # fmt: skip


def _resolve_git(ws: Workspace, spec: str, rev: str, batch: str) -> ResolvedRevision:
    sha = resolve_commit(ws.root, rev)
    if sha is None:
        raise RevisionError(
            f"revision {spec}: git revision {rev!r} not found in {ws.root} (tried git rev-parse)"
        )
    if not has_file(ws.root, sha, "data/models.dvc"):
        raise RevisionError(
            f"revision {spec}: data/models.dvc is not committed at {rev} ({sha[:10]}), "
            "so it holds no versioned models"
        )
    subject = run_git(ws.root, ["log", "-1", "--format=%s", sha], check=False).stdout.strip()
    canonical = f"git:{sha}:{batch}"
    origin = {"commit": sha, "rev": rev, "subject": subject}
    return ResolvedRevision(canonical, "git", spec, batch, sha=sha, fingerprint=sha,
                            origin=origin)  # fmt: skip


def _train_tasks(ws: Workspace) -> list:
    from kwsops.tracking.index import list_tasks

    return list_tasks(ws.root, TRAIN_TASK, None)


def _from_record(record, requested: str) -> ResolvedRevision:
    origin = {
        "clearml_task": record.task_id,
        "mode": record.mode,
        "web_url": record.web_url,
        "session": record.session,
        "tags": list(record.tags or []),
    }
    spec = f"clearml:{record.task_id}"
    return ResolvedRevision(spec, "clearml", requested, task_id=record.task_id,
                            fingerprint=record.task_id, origin=origin)  # fmt: skip


def _resolve_clearml(ws: Workspace, spec: str, task_id: str) -> ResolvedRevision:
    for record in _train_tasks(ws):
        if task_id in (record.task_id, record.imported_id):
            return _from_record(record, spec)
    # not in the workspace index: a task of a server only; fetch_artifacts will say if not
    origin = {"clearml_task": task_id, "mode": "online", "web_url": None, "session": None}
    return ResolvedRevision(spec, "clearml", spec, task_id=task_id, fingerprint=task_id,
                            origin=origin)  # fmt: skip


def _resolve_last(ws: Workspace, spec: str, count: int) -> list[ResolvedRevision]:
    records = [r for r in _train_tasks(ws) if r.status == "completed" and r.artifacts]
    if not records:
        raise RevisionError(
            f"revision {spec}: no completed `{TRAIN_TASK}` task with model artifacts "
            f"(tried the workspace's ClearML index and, when online, the server)"
        )
    return [_from_record(record, spec) for record in records[:count]]


def _resolve_registry(ws: Workspace, spec: str) -> ResolvedRevision:
    from dataclasses import replace

    from kwsops.versioning.tags import RegistryError, find_version

    try:
        version = find_version(ws.root, spec)
    except RegistryError as exc:
        raise RevisionError(f"revision {spec}: {exc}") from None
    kind, parts = parse_spec(version.revision or "-")
    if kind == "git":
        found = _resolve_git(ws, spec, parts["rev"], parts["batch"])
    elif kind == "clearml":
        found = _resolve_clearml(ws, spec, parts["task"])
    else:
        raise RevisionError(f"revision {spec}: {version.ref} names no revision it can load")
    stages = f" ({', '.join(version.stages)})" if version.stages else ""
    origin = {**found.origin, "registry": f"{version.ref}{stages}", "version": version.ref}
    return replace(found, origin=origin)


def resolve_revisions(ws: Workspace, specs: list[str], batch_sizes: list[int]) -> list:
    """Specs (empty: ``workspace:batch_<bs>`` for each batch size) to pinned revisions, in
    order, without duplicates. Raises :class:`RevisionError` naming the first bad one."""
    resolved: dict[str, ResolvedRevision] = {}
    for spec in list(specs) or default_specs(batch_sizes):
        kind, parts = parse_spec(spec)
        if kind == "workspace":
            found = [_resolve_workspace(ws, spec, parts["batch"])]
        elif kind == "git":
            found = [_resolve_git(ws, spec, parts["rev"], parts["batch"])]
        elif kind == "clearml":
            found = [_resolve_clearml(ws, spec, parts["task"])]
        elif kind == "registry":
            found = [_resolve_registry(ws, spec)]
        else:
            found = _resolve_last(ws, spec, int(parts["n"]))
        for revision in found:
            resolved.setdefault(revision.spec, revision)
    return list(resolved.values())


def _clearml_folds(fetched: dict[str, Path]) -> list[Path]:
    folds = sorted((int(m.group(1)), p) for n, p in fetched.items() if (m := _FOLD.match(n)))
    return [path for _, path in folds]


def materialise(ws: Workspace, revision: ResolvedRevision, dest: Path) -> FetchedRevision:
    """The revision's fold model files: in place for the workspace, else fetched into ``dest``."""
    dest = Path(dest)
    if revision.kind == "workspace":
        paths = _fold_files(ws.models_dir / revision.batch)
        if not paths:
            raise RevisionError(f"revision {revision.spec}: its fold models disappeared")
        return FetchedRevision(revision, paths)
    if revision.kind == "git":
        from kwsops.versioning.dvc import models_at_revision
        from kwsops.versioning.errors import VersioningError

        try:
            folder = models_at_revision(ws.root, revision.sha, revision.batch, dest)
        except VersioningError as exc:
            raise RevisionError(f"revision {revision.requested}: {exc}") from None
        paths = _fold_files(folder)
        where = f"data/models/{revision.batch} at {revision.sha[:10]}"
    else:
        from kwsops.tracking.index import fetch_artifacts
        from kwsops.tracking.setup import TrackingError

        try:
            paths = _clearml_folds(fetch_artifacts(ws.root, revision.task_id, dest))
        except (TrackingError, OSError) as exc:
            raise RevisionError(
                f"revision {revision.requested}: cannot fetch the models of ClearML task "
                f"{revision.task_id} (tried the offline session, then the server): {exc}"
            ) from None
        where = f"ClearML task {revision.task_id}'s artifacts"
    if not paths:
        raise RevisionError(f"revision {revision.requested}: no fold models in {where}")
    return FetchedRevision(revision, paths)
