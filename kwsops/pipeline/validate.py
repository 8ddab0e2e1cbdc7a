"""The Validate stage as a plain function: compare model revisions on the held-out test clips.

Everything is computed before anything is written: a revision that cannot be found or fetched
fails the stage with the previous report left as it was. The plots folder is swapped in
atomically, then the JSON, then the Markdown, then the stamp. A failing quality gate writes
the (complete) report that shows why, but no stamp, and raises :class:`QualityGateError`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kwsops import exitcodes
from kwsops.atomic import atomic_dir, atomic_write_json, atomic_write_text, remove_leftovers
from kwsops.compare.revisions import ResolvedRevision, materialise, trained_batch_sizes
from kwsops.keywords import DEFAULT_BUDGET
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import digest, file_sha256
from kwsops.text import plural
from kwsops.workspace import Workspace

if TYPE_CHECKING:  # the model loads numpy and pydantic: only when Validate runs
    from kwsops.compare.model import Comparison


class QualityGateError(RuntimeError):
    """The best revision's accuracy is under ``fail_below``: the run exits 5."""

    exit_code = exitcodes.QUALITY_GATE


class ValidationInputError(FileNotFoundError):
    """The test split Validate needs is missing; the message says what to run."""


def split_digest(ws: Workspace) -> str:
    """Digest of the test split and its meta (part of the Validate key); '' when missing."""
    files = [ws.spec_dir / "test.safetensors", ws.spec_dir / "meta.json"]
    if not all(f.is_file() for f in files):
        return ""
    return digest([file_sha256(f) for f in files])


def require_test_split(ws: Workspace) -> None:
    if not split_digest(ws):
        raise ValidationInputError(
            f"{ws.spec_dir} has no test split (test.safetensors, meta.json): run the pipeline "
            "first (`kwsops run`), or `dvc pull data/spec_ds.dvc` in a fresh clone"
        )


def require_trained_models(ws: Workspace) -> list[int]:
    """The batch sizes data/models holds fold models of; ValidationInputError when none."""
    sizes = trained_batch_sizes(ws)
    if not sizes:
        raise ValidationInputError(
            f"{ws.models_dir} holds no trained models (batch_<size>/fold_<k>/): run the "
            "pipeline first (`kwsops run`), or name the models to compare with --revisions"
        )
    return sizes


def compare(
    ws: Workspace,
    revisions: list[ResolvedRevision],
    scratch: Path,
    progress: ProgressFn,
    budget: float = DEFAULT_BUDGET,
) -> Comparison:
    """Fetch and score every revision; the comparison (ranked, paired tests added)."""
    from kwsops.compare.assemble import build_comparison, score_revision, short_last_notes
    from kwsops.ml.features import load_meta, load_split, training_clips

    split = load_split(ws.spec_dir, "test")
    meta = load_meta(ws.spec_dir)
    held_in = meta["train"]
    train_sha = training_clips(held_in["ids"], held_in["speakers"])["ids_sha256"]
    total = len(revisions)  # progress counts revisions scored
    results = []
    for n, revision in enumerate(revisions):
        progress(n, total, f"revision {n + 1}/{total}: fetching {revision.requested}")
        fetched = materialise(ws, revision, scratch / f"rev_{n}")
        progress(n, total, f"revision {n + 1}/{total}: scoring on {len(split)} test clips")
        history = fold_histories(fetched.model_paths)
        results.append(score_revision(revision, fetched.model_paths, split, ws.output_dir,
                                      train_sha, history, budget))  # fmt: skip
    return build_comparison(results, meta, split, short_last_notes(revisions))


def fold_histories(model_paths: list[Path]) -> list[list[dict]]:
    """Each fold's per-epoch history (history.csv beside its model), where the revision has
    one: workspace and git revisions do, ClearML artifacts hold only the models."""
    from kwsops.ml.fold.files import read_history

    found = []
    for path in model_paths:
        try:
            found.append(read_history(Path(path).parent / "history.csv"))
        except (OSError, ValueError):
            return []
    return found


def _log(tracker, comparison: Comparison, plots: Path) -> None:
    from kwsops.compare.assemble import display_name_of

    for rev in comparison.revisions:
        name = display_name_of(rev)
        tracker.single(f"{name} accuracy", rev.accuracy.mean)
        tracker.single(f"{name} macro F1", rev.macro_f1.mean)
        tracker.single(f"{name} ensemble accuracy", rev.ensemble_accuracy.mean)
        tracker.single(f"{name} ms per clip", rev.latency_ms)
        if rev.spotting:
            tracker.single(f"{name} miss rate at budget", rev.spotting.at_budget.miss_rate)
        if rev.paired:
            tracker.single(f"{name} p vs best", rev.paired.p_value)
    for png in sorted(plots.glob("*.png")):
        tracker.figure(png.stem, png)


def validate_stage(
    ws: Workspace,
    key: str,
    revisions: list[ResolvedRevision],
    *,
    stamp_file: Path,
    fail_below: float = 0.0,
    progress: ProgressFn = no_progress,
    budget: float = DEFAULT_BUDGET,
) -> StageResult:
    """Compare ``revisions`` into reports/comparison_versions.{md,json} and reports/plots/."""
    from kwsops.compare.assemble import display_name_of
    from kwsops.compare.markdown import render_html, render_markdown
    from kwsops.compare.model import Gate, ValidationTask
    from kwsops.compare.plots import write_plots
    from kwsops.tracking.tracker import stage_task

    require_test_split(ws)
    if not revisions:
        raise ValueError("no revisions to compare")
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(ws.reports_dir)
    for stale in ws.state_dir.glob("validate-*"):  # models fetched by a killed Validate
        shutil.rmtree(stale, ignore_errors=True)
    params = {"revisions": [r.requested for r in revisions], "fail_below": fail_below,
              "false_alarms_per_hour": budget}  # fmt: skip
    with stage_task(ws.root, "validation", "testing", params) as tracker:
        scratch = Path(tempfile.mkdtemp(prefix="validate-", dir=ws.state_dir))
        try:
            comparison = compare(ws, revisions, scratch, progress, budget)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        top = comparison.best
        best = top.accuracy.mean
        comparison.gate = Gate.of(fail_below, best)
        comparison.validation_task = ValidationTask(
            task_id=tracker.task_id,
            mode=tracker.mode,
            web_url=tracker.web_url,
            session=str(tracker.session or "") or None,
        )
        progress(len(revisions), len(revisions), "writing the report")
        with atomic_dir(ws.plots_dir) as tmp:
            write_plots(comparison, tmp)
        atomic_write_json(ws.comparison_report.with_suffix(".json"), comparison.to_dict())
        markdown = render_markdown(comparison)
        atomic_write_text(ws.comparison_report.with_suffix(".html"), render_html(markdown))
        atomic_write_text(ws.comparison_report, markdown)
        _log(tracker, comparison, ws.plots_dir)
        tracker.artifact("report", ws.comparison_report)
        tracker.artifact("comparison", ws.comparison_report.with_suffix(".json"))
        detail = (
            f"best {display_name_of(top)}: accuracy {best:.3f} "
            f"({plural(len(revisions), 'revision')}, "
            f"{plural(comparison.test.clips, 'test clip')})"
        )
        if comparison.gate.status == "failed":
            raise QualityGateError(
                f"best accuracy {best:.3f} ({display_name_of(top)}) is under "
                f"fail_below {fail_below:.3f}; see {ws.comparison_report}"
            )
    atomic_write_json(stamp_file, {"key": key, "best": top.spec, "accuracy": best})
    summary = {"best": top.spec, "accuracy": round(best, 6), "task_id": tracker.task_id}
    return StageResult(detail, summary)
