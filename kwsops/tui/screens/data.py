"""Data: per-label counts kept and rejected, speakers, the background-noise recordings, the
duration spread, the rejected files and why."""

from __future__ import annotations

import threading

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from kwsops.audio.layout import speakers_phrase
from kwsops.keywords import NO_UNKNOWN
from kwsops.text import rich_text
from kwsops.tui import formatting as fmt
from kwsops.tui.messages import Problem
from kwsops.tui.readers.manifest import NOISE, LabelStats, ManifestSummary, spread
from kwsops.tui.state import console_app
from kwsops.tui.widgets.tables import set_columns
from kwsops.tui.widgets.topbar import TopBar
from kwsops.tui.workers import ForwardWorkerErrors

LABEL_COLUMNS = (
    ("label", "Label", 14),
    ("kept", "Kept", 5),
    ("rejected", "Rejected", 8),
    ("speakers", "Speakers", 8),
    ("input", "Input s min/med/max", 19),
    ("speech", "Speech s min/med/max", 20),
    ("spread", "Input spread", 14),
)
NARROW_LABEL_COLUMNS = (  # counts up to 999 999 kept, 99 999 speakers: Speech Commands fits
    ("label", "Label", 11),
    ("kept", "Kept", 6),
    ("rejected", "Rej", 4),
    ("speakers", "Spk", 7),  # "unknown"
    ("input", "In s min/med/max", 18),
    ("speech", "Speech s min/med/max", 20),
)
REJECTED_COLUMNS = (("source", "Source", 40), ("label", "Label", 12), ("reason", "Reason", None))
NARROW_REJECTED_COLUMNS = (("source", "Source", 30), ("reason", "Reason", None))
WIDE = 100
_LAYOUT_LOCK = threading.Lock()
EMPTY = (
    "[b]No manifest yet.[/b] Preprocess writes [b]data/output/manifest.csv[/b] (every input "
    "file, kept or rejected with its reason).\nPut recordings in data/input/<Label>/ (or run "
    "[b]kwsops demo-data[/b]) and press [b]s[/b] to start a run."
)


def seconds_text(value: float) -> str:
    """Three digits or so: ``1.18``, ``61.2``, ``3600`` (noise recordings run to minutes)."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def spread_text(values: list[float]) -> str:
    found = spread(values)
    return "" if found is None else " / ".join(seconds_text(v) for v in found)


def fitted_height(table: DataTable, cells: list) -> int | None:
    """1 where every cell fits its column, else None: the row grows to show it whole (a
    file name, a reason); measured only for such rows, so a long manifest stays fast."""
    for cell, column in zip(cells, table.ordered_columns, strict=False):
        if len(getattr(cell, "plain", str(cell))) > column.width:
            return None
    return 1


def title_text(summary: ManifestSummary) -> Text:
    """The screen's headline; label spellings are user strings, so Text, never markup."""
    title = Text.assemble(
        (f"{summary.total} files", "bold"),
        " · ",
        (f"{summary.kept} kept", "green"),
        " · ",
        (f"{len(summary.rejected)} rejected", "red"),
        f" · {summary.label_count} labels · {speakers_phrase(summary.speakers)}",
    )
    if summary.noise.kept:
        seconds = sum(summary.noise.durations_out)
        title.append(f" · {summary.noise.kept} noise recordings ({seconds:.0f} s)", "cyan")
    if summary.lists:
        title.append(" · official split lists")
    title.append(f"  {summary.path.name}", "dim")
    if summary.kept and not summary.unknown_speech:
        title.append(f"\n{NO_UNKNOWN}", "yellow")
    for label, others in summary.merged.items():
        title.append("\nmerged: ", "dim").append(rich_text(", ".join(others), limit=400))
        title.append(" → ").append(rich_text(label, limit=60))
    return title


def speakers_cell(stats: LabelStats) -> Text:
    """Speakers the label's kept clips name; ``unknown`` when none names one."""
    if stats.label == NOISE or not stats.kept:
        return Text("")
    if not stats.speakers:
        return Text("unknown", style="dim")
    return Text(str(len(stats.speakers)))


class DataScreen(ForwardWorkerErrors, Screen):
    BINDINGS = [Binding("r", "reload", "Reload"), Binding("v", "verify", "Verify data")]

    def __init__(self) -> None:
        super().__init__()
        self._stamp: tuple[int, int] | None = None
        self.summary: ManifestSummary | None = None
        self.wide = True

    def compose(self) -> ComposeResult:
        yield TopBar("data")
        with Vertical(id="data"):
            yield Static(id="data-title")
            yield Static(id="data-verify").set_styles("display: none;")  # shown by v
            yield DataTable(id="labels", cursor_type="row")
            yield Static("Rejected files", classes="section-title")
            yield DataTable(id="rejected", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._layout(self.app.size.width)
        self.query_one("#data-title", Static).update("Reading the manifest…")
        self._check()
        self.set_interval(2.0, self._check)

    def _layout(self, width: int) -> None:
        """Narrower than WIDE: fewer, tighter columns, so nothing scrolls sideways at 80."""
        self.wide = width >= WIDE
        labels = LABEL_COLUMNS if self.wide else NARROW_LABEL_COLUMNS
        rejected = REJECTED_COLUMNS if self.wide else NARROW_REJECTED_COLUMNS
        for table_id, columns in (("#labels", labels), ("#rejected", rejected)):
            set_columns(self.query_one(table_id, DataTable), columns, width)

    def on_resize(self, event: events.Resize) -> None:
        if (event.size.width >= WIDE) != self.wide:
            self._layout(event.size.width)
            self._show(self.summary)

    def _check(self, force: bool = False) -> None:
        stamp = console_app(self.app).manifest_summaries.stamp()
        if force or stamp != self._stamp:
            self._stamp = stamp
            self._load(stamp, force)

    def action_reload(self) -> None:
        self._check(force=True)

    def action_verify(self) -> None:
        line = self.query_one("#data-verify", Static)
        line.display = True
        line.update(Text("verifying the versioned data…"))
        self._verify()

    @work(thread=True, group="verify", exclusive=True, exit_on_error=False, name="verify")
    def _verify(self) -> None:
        """`kwsops verify` (read-only) off the UI thread: it hashes every versioned file."""
        from kwsops.versioning.verify import verify

        report = verify(console_app(self.app).workspace.root)
        self.app.call_from_thread(
            self.query_one("#data-verify", Static).update, verify_text(report)
        )

    @work(thread=True, group="manifest", exclusive=True, exit_on_error=False, name="manifest")
    def _load(self, stamp: tuple[int, int], force: bool = False) -> None:
        """Read and lay out off the UI thread: a 100 000-row manifest takes about half a
        second to summarise (the app reads it ahead, so usually it is there already), and the
        screen stays responsive meanwhile. ``force`` (r): read the file again whatever its
        stamp says."""
        cache = console_app(self.app).manifest_summaries
        try:
            summary = cache.read(stamp, fresh=force)
        except (OSError, ValueError) as exc:
            self.post_message(Problem(f"cannot read the manifest: {exc}"))
            summary = None
        wide = self.wide
        rows = laid_out(summary, wide) if summary else ([], [])
        self.app.call_from_thread(self._show, summary, rows if wide == self.wide else None)

    def _show(self, summary: ManifestSummary | None, rows: TableRows | None = None) -> None:
        self.summary = summary
        labels = self.query_one("#labels", DataTable)
        rejected = self.query_one("#rejected", DataTable)
        labels.clear()
        rejected.clear()
        title = self.query_one("#data-title", Static)
        if summary is None:
            title.update(EMPTY)
            return
        title.update(title_text(summary))
        label_rows, rejected_rows = rows or laid_out(summary, self.wide)
        for key, cells in label_rows:
            shown = cells[: len(labels.columns)]
            labels.add_row(*shown, key=key, height=fitted_height(labels, shown))
        for key, cells in rejected_rows:
            rejected.add_row(*cells, key=key, height=fitted_height(rejected, cells))


TableRows = tuple[list[tuple[str, list]], list[tuple[str, list]]]


def verify_text(report) -> Text:
    """One line: all versioned files good, or the first bad one and the fix."""
    bad = report.unrepaired
    if not bad:
        return Text(f"verified: {report.checked} versioned files match their DVC hashes", "green")
    first = bad[0]
    more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    return Text.assemble(
        (f"{len(bad)} bad: ", "bold red"), rich_text(first.path, limit=200),
        f" ({first.why}){more}; fix: kwsops verify --repair, or kwsops pull",
    )  # fmt: skip


def laid_out(summary: ManifestSummary, wide: bool) -> TableRows:
    """:func:`table_rows`, made once per summary and layout (the app lays the rows out ahead,
    with the summary, so that the Data screen only fills its tables; a screen that asks
    meanwhile waits for those rows rather than making them a second time)."""
    with _LAYOUT_LOCK:
        rows = summary.layouts.get(wide)
        if rows is None:
            rows = summary.layouts[wide] = table_rows(summary, wide)
        return rows


def table_rows(summary: ManifestSummary, wide: bool) -> TableRows:
    """(key, cells) of the labels table and of the rejected-files table."""
    every = summary.all_durations("in")
    low, high = (min(every), max(every)) if every else (0.0, 1.0)
    noise = [summary.noise] if summary.noise.total else []
    label_rows = [
        (
            stats.label,
            [
                rich_text(stats.label, "cyan" if stats is summary.noise else "", limit=60),
                str(stats.kept),
                Text(str(stats.rejected), style="red" if stats.rejected else "dim"),
                speakers_cell(stats),
                spread_text(stats.durations_in),
                spread_text(stats.durations_out),
                Text(fmt.sparkline(stats.durations_in, low, high), style="cyan"),
            ],
        )
        for stats in [*summary.labels, *noise]
    ]
    rejected_rows = []
    for index, item in enumerate(summary.rejected):
        source = rich_text(item.source, limit=400)  # whole: it names the file to fix
        reason = rich_text(item.reason, "red", 400)
        cells = [source, rich_text(item.label, limit=60), reason] if wide else [source, reason]
        rejected_rows.append((f"{index}:{item.source}", cells))
    return label_rows, rejected_rows
