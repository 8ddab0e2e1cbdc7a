"""A comparison dict as Validate saves it (reports/comparison_versions.json), with a hostile
label, for the report and console tests."""

from __future__ import annotations

import json
from pathlib import Path

from kwsops.compare.markdown import render_markdown
from kwsops.compare.model import Comparison

HOSTILE = "ro|ck*_`[x](y)<b>#\x1b[31m\x1b[2J\x1b]0;owned\x07\\\nz\u202e"
LABELS = ["catch", "gun", HOSTILE]


def revision(spec: str, acc: float, lr: float, rank: int, paired: dict | None) -> dict:
    per_class = [
        {"label": name, "precision": acc - 0.01 * i, "recall": acc - 0.02 * i,
         "f1": acc - 0.015 * i, "support": 6 + i}
        for i, name in enumerate(LABELS)
    ]  # fmt: skip
    return {
        "spec": spec, "requested": spec, "kind": spec.split(":")[0], "rank": rank,
        "origin": {"commit": "a" * 40, "rev": "HEAD", "subject": "models <img src=x> | *lr*"},
        "folds": 2, "accuracy": {"mean": acc, "low": acc - 0.1, "high": min(acc + 0.05, 1),
                                 "per_fold": [acc - 0.02, acc + 0.02]},
        "macro_f1": {"mean": acc - 0.03, "low": acc - 0.2, "high": acc},
        "ensemble_accuracy": {"mean": acc + 0.01, "low": acc - 0.1, "high": 1.0},
        "per_class": per_class,
        "confusion": [[0.8, 0.1, 0.1], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]],
        "params": {"batch_size": 16, "learning_rate": lr, "arch.name": "tcresnet"},
        "parameters": 124_611, "file_bytes": 510_000, "latency_ms": 1.234,
        "features_recomputed": rank == 2, "paired": paired, "plot": f"plots/c{rank}.png",
        "history": [[{"epoch": e, "val_acc": acc * e / 3 - 0.05 * fold, "val_loss": 2.0 / e + fold}
                     for e in (1, 2, 3)] for fold in (0, 1)],
        "per_speaker": [{"speaker": f"spk{n:02d}" if n else HOSTILE, "clips": 4,
                         "accuracy": 0.5 + 0.04 * n, "ensemble_accuracy": 0.55 + 0.04 * n}
                        for n in range(12)],
        "misclassified": [{"source": f"{HOSTILE}/take_{n:02d}.wav", "clip": f"x/{n}.wav",
                           "speaker": "spk01", "true": HOSTILE, "predicted": "gun",
                           "probability": 0.99 - 0.05 * n, "p_true": 0.01} for n in range(11)],
    }  # fmt: skip


def make_comparison() -> dict:
    paired = {"against": "git:" + "a" * 40 + ":batch_16", "b": 3, "c": 1, "p_value": 0.625,
              "method": "McNemar exact"}  # fmt: skip
    revisions = [
        revision("git:" + "a" * 40 + ":batch_16", 0.9, 0.001, 1, None),
        revision("workspace:batch_16", 0.8, 0.01, 2, paired),
    ]
    return {
        "schema": 1, "created": "2026-01-01T00:00:00",
        "test": {"clips": 21, "labels": LABELS, "speakers": 2},
        "method": {"n_boot": 2000, "seed": 42, "level": 0.95, "exact_below": 25,
                   "latency_batch": 8, "latency_repeats": 7},
        "best": revisions[0]["spec"], "differing_params": ["learning_rate"],
        "revisions": revisions, "notes": ["last:3 found 2 <tasks>"],
        "plots": {"accuracy": "plots/accuracy.png"},
        "gate": {"fail_below": 0.5, "status": "passed"},
        "validation_task": {"task_id": "offline-1", "mode": "offline", "web_url": None},
    }  # fmt: skip


def markdown_of(data: dict) -> str:
    """The Markdown report of a comparison as its JSON holds it."""
    return render_markdown(Comparison.from_dict(data))


def write_report(data: dict, folder: Path) -> Path:
    """comparison_versions.md and .json of ``data`` in ``folder``."""
    md = folder / "comparison_versions.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(markdown_of(data))
    md.with_suffix(".json").write_text(json.dumps(data))
    return md
