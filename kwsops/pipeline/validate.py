"""The Validate stage as a plain function: compare model revisions on the held-out test clips.

Everything is computed before anything is written: a revision that cannot be found or fetched
fails the stage with the previous report left as it was. The plots folder is swapped in
atomically, then the JSON, then the Markdown, then the stamp. A failing quality gate writes
the (complete) report that shows why, but no stamp, and raises :class:`QualityGateError`.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from kwsops import exitcodes
from kwsops.atomic import atomic_dir, atomic_write_json, atomic_write_text, remove_leftovers
from kwsops.compare.revisions import ResolvedRevision, materialise, trained_batch_sizes
from kwsops.keywords import DEFAULT_BUDGET, NO_UNKNOWN, UNKNOWN
from kwsops.pipeline.result import StageResult
from kwsops.progress import ProgressFn, no_progress
from kwsops.stamps import digest, file_sha256
from kwsops.text import plural
from kwsops.workspace import Workspace

SCHEMA = 1


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


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def compare(
    ws: Workspace,
    revisions: list[ResolvedRevision],
    scratch: Path,
    progress: ProgressFn,
    budget: float = DEFAULT_BUDGET,
) -> dict:
    """Fetch and score every revision; the comparison dict (ranked, paired tests added)."""
    from kwsops.compare import evaluation as ev
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
        scores = ev.evaluate_models(fetched.model_paths, split, ws.output_dir, budget=budget)
        scores["unseen"] = ev.unseen_check(scores.pop("trained_on"), split, train_sha)
        scores["history"] = fold_histories(fetched.model_paths)
        results.append({"spec": revision.spec, "requested": revision.requested,
                        "kind": revision.kind, "origin": revision.origin, **scores})  # fmt: skip
    ranked = ev.rank(results)
    for position, result in enumerate(ranked, start=1):
        result["rank"] = position
    ev.paired_against_best(ranked)
    return {
        "schema": SCHEMA,
        "created": datetime.now().isoformat(timespec="seconds"),
        "test": test_facts(meta, split),
        "method": {
            "n_boot": ev.N_BOOT,
            "seed": ev.SEED,
            "level": ev.LEVEL,
            "exact_below": ev.EXACT_BELOW,
            "latency_batch": ev.LATENCY_BATCH,
            "latency_repeats": ev.LATENCY_REPEATS,
        },  # fmt: skip
        "best": ranked[0]["spec"],
        "differing_params": ev.differing_params(ranked),
        "revisions": ranked,
        "notes": unseen_notes(ranked, split)
        + ([NO_UNKNOWN] if UNKNOWN not in split.label_names else []),
        "plots": {},
    }


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


def test_facts(meta: dict, split) -> dict:
    """The test split as the report states it: clips, labels, speakers named in it and in the
    whole data set (0: unknown), and which split it is (kwsops.ml.split)."""
    known = {s for s in split.speakers if s}
    total = known | {s for s in meta["train"]["speakers"] if s}
    kind = meta["split"].get("kind") or ("speaker" if known else "clip")  # older meta.json
    return {
        "clips": len(split),
        "labels": split.label_names,
        "speakers": len(known),
        "speakers_total": len(total),
        "split": {
            "kind": kind,
            "note": meta["split"].get("note", ""),
            "share_note": meta["split"].get("share_note", ""),
            "lists": meta["split"].get("lists", []),
            "test_size": meta["split"].get("test_size"),
            "seed": meta["split"].get("seed"),
        },
    }


def write_plots(data: dict, folder: Path) -> None:
    from kwsops.compare.markdown import display_name, plot_accuracy, plot_confusion, plot_curves
    from kwsops.compare.spotting import plot_det

    plot_accuracy(data["revisions"], folder / "accuracy.png")
    data["plots"]["accuracy"] = "plots/accuracy.png"
    if plot_det(data["revisions"], folder / "det.png"):
        data["plots"]["det"] = "plots/det.png"
    for rev in data["revisions"]:
        slug = f"{rev['rank']}_{_slug(display_name(rev['spec']))}"
        title = f"{display_name(rev['spec'])}: mean over {rev['folds']} folds"
        plot_confusion(
            rev["confusion"], data["test"]["labels"], title, folder / f"confusion_{slug}.png"
        )
        rev["plot"] = f"plots/confusion_{slug}.png"
        if rev.get("history"):
            plot_curves(rev["history"], display_name(rev["spec"]), folder / f"curves_{slug}.png")
            rev["curves_plot"] = f"plots/curves_{slug}.png"


def _log(tracker, data: dict, plots: Path) -> None:
    for rev in data["revisions"]:
        name = display_name_of(rev)
        tracker.single(f"{name} accuracy", rev["accuracy"]["mean"])
        tracker.single(f"{name} macro F1", rev["macro_f1"]["mean"])
        tracker.single(f"{name} ensemble accuracy", rev["ensemble_accuracy"]["mean"])
        tracker.single(f"{name} ms per clip", rev["latency_ms"])
        if rev.get("spotting"):
            tracker.single(f"{name} miss rate at budget", rev["spotting"]["at_budget"]["miss_rate"])
        if rev.get("paired"):
            tracker.single(f"{name} p vs best", rev["paired"]["p_value"])
    for png in sorted(plots.glob("*.png")):
        tracker.figure(png.stem, png)


def unseen_notes(ranked: list[dict], split) -> list[str]:
    """A note for each revision whose test accuracy is not on clips and voices it never heard."""
    from kwsops.compare import evaluation as ev

    speakers = len({s for s in split.speakers if s})
    notes = [ev.unseen_note(display_name_of(rev), rev["unseen"], speakers) for rev in ranked]
    notes += [
        f"{display_name_of(rev)}: {rev['fold_fallback']}, so its fold validation voices were "
        "also trained on"
        for rev in ranked
        if rev.get("fold_fallback")
    ]
    return [note for note in notes if note]


def short_last_notes(revisions: list[ResolvedRevision]) -> list[str]:
    """A note for each ``last:N`` that found fewer than N `train model` tasks."""
    counts: dict[str, int] = {}
    for revision in revisions:
        if revision.requested.startswith("last:"):
            counts[revision.requested] = counts.get(revision.requested, 0) + 1
    return [
        f"{spec} asked for {spec[5:]} `train model` tasks; only {found} were found"
        for spec, found in counts.items()
        if found < int(spec[5:])
    ]


def display_name_of(rev: dict) -> str:
    from kwsops.compare.markdown import display_name
    from kwsops.text import clean_text

    return clean_text(display_name(rev["spec"]), 60)


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
    from kwsops.compare.markdown import render_html, render_markdown
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
            data = compare(ws, revisions, scratch, progress, budget)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        data["notes"] = short_last_notes(revisions) + data["notes"]
        best = data["revisions"][0]["accuracy"]["mean"]
        failed = bool(fail_below) and best < fail_below
        status = "off" if not fail_below else ("failed" if failed else "passed")
        data["gate"] = {"fail_below": fail_below, "status": status}
        data["validation_task"] = {"task_id": tracker.task_id, "mode": tracker.mode,
                                   "web_url": tracker.web_url,
                                   "session": str(tracker.session or "") or None}  # fmt: skip
        progress(len(revisions), len(revisions), "writing the report")
        with atomic_dir(ws.plots_dir) as tmp:
            write_plots(data, tmp)
        atomic_write_json(ws.comparison_report.with_suffix(".json"), data)
        markdown = render_markdown(data)
        atomic_write_text(ws.comparison_report.with_suffix(".html"), render_html(markdown))
        atomic_write_text(ws.comparison_report, markdown)
        _log(tracker, data, ws.plots_dir)
        tracker.artifact("report", ws.comparison_report)
        tracker.artifact("comparison", ws.comparison_report.with_suffix(".json"))
        top = data["revisions"][0]
        detail = (
            f"best {display_name_of(top)}: accuracy {top['accuracy']['mean']:.3f} "
            f"({plural(len(revisions), 'revision')}, {plural(data['test']['clips'], 'test clip')})"
        )
        if failed:
            raise QualityGateError(
                f"best accuracy {best:.3f} ({display_name_of(top)}) is under "
                f"fail_below {fail_below:.3f}; see {ws.comparison_report}"
            )
    atomic_write_json(stamp_file, {"key": key, "best": top["spec"], "accuracy": best})
    summary = {"best": top["spec"], "accuracy": round(best, 6), "task_id": tracker.task_id}
    return StageResult(detail, summary)
