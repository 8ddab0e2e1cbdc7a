"""Curves: validation accuracy and loss by epoch, one line per fold, drawn with plotext
(textual-plotext's widget).

Live while a run trains: every epoch of a TrainFold is an event in the run's log, folded into
``TaskState.curve``. A run that trained nothing (its models were up to date) shows the
histories of the last comparison's revisions instead (reports/comparison_versions.json).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from kwsops.tui.readers.monitor import Snapshot
from kwsops.tui.state import console_app
from kwsops.tui.widgets.topbar import TopBar
from kwsops.tui.workers import ForwardWorkerErrors

Curve = tuple[str, tuple[dict, ...]]  # (label, one dict per epoch: epoch, val_acc, val_loss)


def short_label(label: str) -> str:
    """``TrainFold batch 16 fold 0`` -> ``b16 f0``."""
    words = label.split()
    found = {words[i]: words[i + 1] for i in range(len(words) - 1)}
    if "batch" in found and "fold" in found:
        return f"b{found['batch']} f{found['fold']}"
    return label


def group(label: str) -> str:
    """What a line belongs to, its fold left out: ``b16`` of ``b16 f0``, ``ws b16``."""
    return label.rsplit(" ", 1)[0]


def comparison_curves(path: Path) -> list[Curve]:
    """Each compared revision's fold histories, from the comparison JSON."""
    from kwsops.compare.terminal import ReportError, load_comparison
    from kwsops.compare.wording import short_names

    try:
        comparison = load_comparison(path)
    except ReportError:
        return []
    revisions = comparison.revisions if comparison else []
    names = short_names([rev.spec for rev in revisions])
    return [
        (f"{names[rev.spec]} f{fold}", tuple(rows))
        for rev in revisions
        for fold, rows in enumerate(rev.history)
    ]


def epoch_ticks(last: int, most: int = 8) -> list[int]:
    """Whole epochs for the x axis, at most ``most`` of them (plotext's own ticks are
    fractions: 1.5 epochs)."""
    step = max(1, -(-last // max(most, 1)))
    return list(range(1, last + 1, step))


class CurvesScreen(ForwardWorkerErrors, Screen):
    BINDINGS = [Binding("b", "next_batch", "Batch size")]

    def __init__(self) -> None:
        super().__init__()
        self.curves: list[Curve] = []
        self.source = ""
        self.shown_batch: str | None = None  # show one batch size's folds, or all (None)
        self._shown: tuple = ()

    def compose(self) -> ComposeResult:
        yield TopBar("curves")
        yield Static(id="curves-title")
        yield PlotextPlot(id="accuracy-plot")
        yield PlotextPlot(id="loss-plot")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self.show_snapshot)

    def show_snapshot(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            return
        if snapshot.curves:
            run = snapshot.focus.run_id if snapshot.focus else "?"
            self._set(list(snapshot.curves), f"run {run}")
        elif not self.source.startswith("comparison"):
            report = console_app(self.app).workspace.comparison_report
            self._load_comparison(report.with_suffix(".json"))

    @work(thread=True, group="curves", exclusive=True, exit_on_error=False, name="curves")
    def _load_comparison(self, path: Path) -> None:
        curves = comparison_curves(path)
        self.app.call_from_thread(self._set, curves, "comparison report")

    def batches(self) -> list[str]:
        return sorted({group(label) for label, _ in self.shown_curves(all_batches=True)})

    def shown_curves(self, all_batches: bool = False) -> list[Curve]:
        curves = [(short_label(label), rows) for label, rows in self.curves]
        if self.shown_batch is None or all_batches:
            return curves
        return [(label, rows) for label, rows in curves if group(label) == self.shown_batch]

    def action_next_batch(self) -> None:
        options = [None, *self.batches()]
        self.shown_batch = options[(options.index(self.shown_batch) + 1) % len(options)] if options else None
        self._draw()

    def _set(self, curves: list[Curve], source: str) -> None:
        self.curves, self.source = curves, source
        self._draw()

    def _draw(self) -> None:
        curves = self.shown_curves()
        key = (self.source, self.shown_batch, tuple((label, len(rows)) for label, rows in curves))
        if key == self._shown:
            return  # nothing new: no redraw
        self._shown = key
        title = self.query_one("#curves-title", Static)
        if not curves:
            title.update(Text("No training curves yet: they appear as soon as a fold trains "
                              "(start a run with s)."))  # fmt: skip
        else:
            which = self.shown_batch or "all"
            title.update(Text.assemble(("Validation accuracy and loss by epoch", "bold"),
                                       f" · {self.source} · {which} (b)",
                                       style=""))  # fmt: skip
        for widget_id, metric, name in (("#accuracy-plot", "val_acc", "validation accuracy"),
                                        ("#loss-plot", "val_loss", "validation loss")):  # fmt: skip
            plot = self.query_one(widget_id, PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(name)
            plt.xlabel("epoch")
            last = 0
            for label, rows in curves:
                points = [(r["epoch"], r[metric]) for r in rows if metric in r and "epoch" in r]
                if points:
                    xs, ys = zip(*points, strict=True)
                    plt.plot(list(xs), list(ys), label=label, marker="braille")
                    last = max(last, *map(int, xs))
            if last:
                room = plot.size.width or self.app.size.width  # 0 before the first layout
                plt.xticks(epoch_ticks(last, max(2, room // 10)))
            plot.refresh()
