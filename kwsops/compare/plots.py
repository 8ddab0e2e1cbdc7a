"""The comparison's PNG plots (reports/plots/): accuracy by revision, a confusion matrix and
training curves per revision, the DET curve of the spotters. Names the Comparison's plot fields
after the files it wrote, so every report links what is there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kwsops.compare.model import Comparison, RevisionResult
from kwsops.compare.wording import CI, display_name
from kwsops.text import plot_text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60]


def write_plots(comparison: Comparison, folder: Path) -> None:
    """Every plot of ``comparison`` into ``folder``; their paths (under plots/) into it."""
    plot_accuracy(comparison.revisions, folder / "accuracy.png")
    comparison.plots.accuracy = "plots/accuracy.png"
    if plot_det(comparison.revisions, folder / "det.png"):
        comparison.plots.det = "plots/det.png"
    for rev in comparison.revisions:
        name = display_name(rev.spec)
        slug = f"{rev.rank}_{_slug(name)}"
        title = f"{name}: mean over {rev.folds} folds"
        plot_confusion(
            rev.confusion, comparison.test.labels, title, folder / f"confusion_{slug}.png"
        )
        rev.plot = f"plots/confusion_{slug}.png"
        if rev.history:
            plot_curves(rev.history, name, folder / f"curves_{slug}.png")
            rev.curves_plot = f"plots/curves_{slug}.png"


def plot_confusion(matrix: list[list[float]], labels: list[str], title: str, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(labels)
    size = 2.2 + 0.55 * k
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [plot_text(label) for label in labels]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(plot_text(title), fontsize=9)
    for i in range(k):
        for j in range(k):
            value = matrix[i][j]
            color = "white" if value > 0.6 else "black"
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def plot_accuracy(revisions: list[RevisionResult], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 1.2 + 0.45 * len(revisions)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [plot_text(display_name(r.spec)) for r in revisions][::-1]
    acc = [r.accuracy for r in revisions][::-1]
    means = [100 * a.mean for a in acc]
    errors = [
        [100 * (a.mean - a.low) for a in acc],
        [100 * (a.high - a.mean) for a in acc],
    ]
    ax.barh(names, means, xerr=errors, color="#4c78a8", capsize=3)
    ensemble = [100 * r.ensemble_accuracy.mean for r in revisions][::-1]
    ax.scatter(ensemble, names, color="#f58518", zorder=3, label="fold ensemble")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"test accuracy % (mean over folds, {CI})")
    ax.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def plot_curves(history: list[list[dict[str, Any]]], title: str, path: Path) -> Path:
    """Validation accuracy and loss by epoch, one line per fold."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), layout="constrained")
    FigureCanvasAgg(fig)
    accuracy, loss = fig.subplots(1, 2)
    for fold, rows in enumerate(history):
        epochs = [row["epoch"] for row in rows]
        accuracy.plot(epochs, [100 * row["val_acc"] for row in rows], label=f"fold {fold}")
        loss.plot(epochs, [row["val_loss"] for row in rows], label=f"fold {fold}")
    accuracy.set_ylabel("validation accuracy %")
    loss.set_ylabel("validation loss")
    from matplotlib.ticker import MaxNLocator

    for ax in (accuracy, loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    accuracy.legend(fontsize=7)
    fig.suptitle(plot_text(title), fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def plot_det(revisions: list[RevisionResult], path: Path) -> Path | None:
    """Miss rate against false alarms per hour (log axis), one line per revision with spotting
    figures; None (no file) when none has them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [(rev, rev.spotting) for rev in revisions if rev.spotting]
    if not shown:
        return None
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for rev, spot in shown:
        points = sorted(
            (p for p in spot.det if p.false_alarms_per_hour),
            key=lambda p: p.false_alarms_per_hour or 0.0,
        )
        ax.step(
            [p.false_alarms_per_hour for p in points],
            [100 * (p.miss_rate or 0.0) for p in points],
            where="post",
            label=rev.spec,
        )
        at = spot.at_budget
        if at.false_alarms_per_hour and at.miss_rate is not None:
            ax.plot([at.false_alarms_per_hour], [100 * at.miss_rate], "o", color="black")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (test negatives, clip level)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title("DET curve (dot: the operating threshold)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
