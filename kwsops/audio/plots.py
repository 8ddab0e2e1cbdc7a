"""PNG plots of the Preprocess stage for tracking: duration histogram and example waveforms.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot): no display, no global
backend switch, safe from worker threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from kwsops.text import plot_text

if TYPE_CHECKING:
    from kwsops.preprocess import ManifestRow


def _figure(width: float, height: float):  # -> matplotlib.figure.Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def duration_histogram(rows: Sequence[ManifestRow], path: Path) -> Path:
    """Input durations of every decoded file and kept-word durations, one histogram each."""
    inputs = [r.duration_in for r in rows if r.duration_in is not None]
    kept = [r.duration_out for r in rows if r.kept and r.duration_out is not None]
    figure = _figure(8, 3.2)
    axes = figure.subplots(1, 2, sharey=False)
    for ax, values, title in (
        (axes[0], inputs, "input duration (all decoded files)"),
        (axes[1], kept, "kept word duration (before padding)"),
    ):
        if values:
            ax.hist(values, bins=min(40, max(5, len(values) // 4)), color="tab:blue")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{title}, n={len(values)}", fontsize=9)
        ax.set_xlabel("seconds")
    axes[0].set_ylabel("files")
    return _save(figure, path)


def _spread(rows: Sequence[ManifestRow], n: int) -> list[ManifestRow]:
    """Up to ``n`` kept rows, taking turns across labels so each label shows up."""
    by_label: dict[str, list[ManifestRow]] = {}
    for row in rows:
        if row.kept and row.output:
            by_label.setdefault(row.label or "", []).append(row)
    turns = zip_longest(*(by_label[label] for label in sorted(by_label)))
    return [row for turn in turns for row in turn if row is not None][:n]


def waveform_examples(
    output_dir: Path, rows: Sequence[ManifestRow], path: Path, n: int = 6
) -> Path:
    """Waveforms of up to ``n`` processed clips, spread over the labels."""
    chosen = _spread(rows, n)
    cols = 2 if len(chosen) > 1 else 1
    lines = max(1, -(-len(chosen) // cols))
    figure = _figure(4.5 * cols, 1.8 * lines)
    axes = np.atleast_1d(figure.subplots(lines, cols, squeeze=False)).ravel()
    for ax, row in zip(axes, chosen, strict=False):
        samples, rate = sf.read(Path(output_dir) / row.output, dtype="float32")
        ax.plot(np.arange(len(samples)) / rate, samples, linewidth=0.4, color="tab:blue")
        ax.set_ylim(-1, 1)
        ax.set_title(plot_text(f"{row.label}: {Path(row.source).name}", 60), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(chosen) :]:
        ax.axis("off")
    if not chosen:
        axes[0].text(0.5, 0.5, "no kept clips", ha="center", va="center")
    return _save(figure, path)
