"""Find the model revisions a comparison can use (for the console's Launch screen).

Three places hold revisions (see DESIGN.md "Model revisions"):

- the workspace: ``data/models/batch_<bs>`` folders holding fold models -> ``workspace:batch_<bs>``;
- git: every commit that changed ``data/models.dvc`` -> ``git:<rev>:batch_<bs>`` for the batch
  sizes that commit trained: named by its message (VersionModels writes them there), else the
  batch folders of the DVC cache's ``.dir`` listing that hold fold models. A commit that says
  neither offers nothing: only revisions that exist are offered;
- ClearML: ``train model`` tasks (online or offline) -> ``clearml:<task-id>``, plus ``last:N``.

Every source may fail on its own (no git, no ClearML, tracking not installed): its error is
reported in ``Discovery.warnings`` and the other sources still answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kwsops.versioning.runner import run_git

MODELS_DVC = "data/models.dvc"
BATCH_DIR = re.compile(r"^batch_(\d+)$")
_FIELD = "\x1f"


@dataclass(frozen=True)
class Revision:
    spec: str  # what `kwsops run --revisions` takes
    source: str  # workspace | git | clearml | last
    title: str  # one line for a person: commit message, task name, metrics
    when: str = ""  # ISO date, empty when unknown


@dataclass
class Discovery:
    revisions: list[Revision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _accuracy_text(metrics_file: Path) -> str:
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(metrics, dict):
        return ""
    summary = metrics.get("summary") if isinstance(metrics.get("summary"), dict) else {}
    if isinstance(summary.get("val_accuracy_mean"), int | float):  # Train's batch metrics
        return f"val accuracy {summary['val_accuracy_mean']:.3f}"
    for key in ("mean_accuracy", "accuracy", "val_accuracy", "mean_val_accuracy"):
        value = metrics.get(key)
        if isinstance(value, int | float):
            return f"accuracy {value:.3f}"
    return ""


def workspace_revisions(root: Path) -> list[Revision]:
    models = root / "data" / "models"
    if not models.is_dir():
        return []
    found = []
    for folder in models.iterdir():
        match = BATCH_DIR.match(folder.name)
        if match and folder.is_dir() and any(folder.glob("fold_*/model.safetensors")):
            detail = _accuracy_text(folder / "metrics.json") or "current data/models"
            found.append((int(match.group(1)), folder.name, detail))
    return [Revision(f"workspace:{name}", "workspace", detail) for _, name, detail in sorted(found)]


def _git(root: Path, *args: str) -> str:
    result = run_git(root, list(args), check=False, timeout=20)
    if result.returncode != 0:
        if "does not have any commits" in result.stderr:
            return ""  # a fresh workspace: nothing committed yet, nothing to compare
        raise RuntimeError(
            result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "git failed"
        )
    return result.stdout


def _dir_listing_batches(root: Path, rev: str) -> list[int]:
    """Batch folders committed at ``rev``, from the DVC cache's listing of data/models."""
    try:
        dvc_file = _git(root, "show", f"{rev}:{MODELS_DVC}")
    except RuntimeError:
        return []
    match = re.search(r"md5:\s*([0-9a-f]{32})\.dir", dvc_file)
    if not match:
        return []
    digest = match.group(1)
    cache = root / ".dvc" / "cache"
    for listing in (
        cache / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir",
        cache / digest[:2] / f"{digest[2:]}.dir",
    ):
        try:
            entries = json.loads(listing.read_text())
        except (OSError, ValueError):
            continue
        models = [str(e.get("relpath", "")).split("/") for e in entries if isinstance(e, dict)]
        tops = {parts[0] for parts in models if parts[-1] == "model.safetensors"}
        return sorted(int(m.group(1)) for t in tops if (m := BATCH_DIR.match(t)))
    return []


def _message_batches(message: str) -> list[int]:
    """``kwsops: models for batch sizes 16,32 (...)`` -> [16, 32]."""
    found = re.findall(r"batch(?:_|\s|-)?(?:sizes?)?[\s:=]*((?:\d+[\s,]*)+)", message, re.I)
    return sorted({int(n) for group in found for n in re.findall(r"\d+", group)})


def git_revisions(root: Path, limit: int = 30) -> list[Revision]:
    log = _git(
        root, "log", f"-{limit}", f"--format=%H{_FIELD}%h{_FIELD}%cI{_FIELD}%s", "--", MODELS_DVC
    )
    revisions = []
    for row in log.splitlines():
        parts = row.split(_FIELD)
        if len(parts) != 4:
            continue
        full, short, when, subject = parts
        batches = _message_batches(subject) or _dir_listing_batches(root, full)
        for batch in batches:
            revisions.append(Revision(f"git:{short}:batch_{batch}", "git", subject, when))
    return revisions


def _get(task: Any, *names: str) -> Any:
    for name in names:
        value = task.get(name) if isinstance(task, dict) else getattr(task, name, None)
        if value not in (None, ""):
            return value
    return None


def clearml_revisions(root: Path) -> list[Revision]:
    from kwsops.tracking.index import list_tasks  # lazy: reads ClearML's index (or its server)

    tasks = list_tasks(root, "train model") or []
    revisions = []
    for task in tasks:
        task_id = _get(task, "id", "task_id")
        if not task_id:
            continue
        name = _get(task, "name", "title") or "train model"
        status = _get(task, "status")
        extra = [str(status)] if status else []
        params = _get(task, "params", "parameters")
        if isinstance(params, dict) and params.get("batch_size"):
            extra.append(f"batch {params['batch_size']}")
        title = " · ".join([str(name), *extra])
        when = str(_get(task, "created", "started", "when", "date") or "")
        revisions.append(Revision(f"clearml:{task_id}", "clearml", title, when))
    if revisions:
        revisions.append(Revision("last:3", "last", "the last three train model tasks"))
    return revisions


def discover_revisions(root: str | Path, *, clearml: bool = True) -> Discovery:
    """Every revision the workspace at ``root`` can compare; never raises."""
    root = Path(root)
    found = Discovery()
    sources = [
        ("workspace", lambda: workspace_revisions(root)),
        ("git", lambda: git_revisions(root)),
    ]
    if clearml:
        sources.append(("clearml", lambda: clearml_revisions(root)))
    for name, source in sources:
        try:
            found.revisions.extend(source())
        except Exception as exc:  # one broken source must not hide the others
            found.warnings.append(f"{name} revisions unavailable: {exc}")
    return found
