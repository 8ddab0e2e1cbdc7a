"""`kwsops report`: the comparison printed with rich (tables, coloured confusion grids), each
section of :mod:`kwsops.compare.sections` rendered to rich renderables.

Reads reports/comparison_versions.json (the numbers behind the Markdown report); without it,
renders the Markdown file itself. Every string from a file becomes a rich ``Text`` after
:func:`kwsops.text.clean_text`, so nothing is parsed as console markup or reaches the terminal
as a control sequence. Works at 80 columns and when piped (rich drops colour without a TTY).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from pathlib import Path

from rich import box
from rich.color import Color
from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text

from kwsops.compare.model import (
    JSON_NAME,
    Comparison,
    Origin,
    ReportError,
    RevisionResult,
    load_comparison,
)
from kwsops.compare.sections import (
    DifferingParams,
    FirstRows,
    Intro,
    Methods,
    RevisionDetail,
    Section,
    Spotter,
    Summary,
    TrackerTask,
    sections,
)
from kwsops.compare.spotting import DET_BUDGETS
from kwsops.compare.wording import (
    CI,
    COMPARISON_TITLE,
    data_phrase,
    display_name,
    human_bytes,
    human_count,
    miss_text,
    p_text,
    pct,
    rate_text,
    split_sentence,
    with_ci,
)
from kwsops.text import clean_text, plural


def comparison_view(comparison: Comparison) -> RenderableType:
    return Group(*(part for section in sections(comparison) for part in section_view(section)))


def _t(text: object, style: str = "", limit: int = 200) -> Text:
    return Text(clean_text(text, limit), style=style)


def _heat(value: float) -> Style:
    """White to dark blue; light text on dark cells."""
    value = min(max(float(value), 0.0), 1.0)
    r, g, b = (int(255 - (255 - c) * value) for c in (8, 69, 148))
    return Style(color="white" if value > 0.55 else "black", bgcolor=Color.from_rgb(r, g, b))


@singledispatch
def section_view(section: Section) -> list[RenderableType]:
    raise TypeError(f"no terminal view of {type(section).__name__}")


@section_view.register
def _intro(section: Intro) -> list[RenderableType]:
    test, gate = section.test, section.gate
    intro = Text("Comparison of model revisions\n", "bold")
    intro.append(f"{plural(test.clips, 'test clip')} of {data_phrase(test)}; ")
    intro.append(f"written {clean_text(section.created)}\n")
    if split_sentence(test):
        intro.append(_t(split_sentence(test), limit=400)).append("\n")
    if gate.status in ("passed", "failed"):
        style = "green" if gate.status == "passed" else "bold red"
        intro.append(f"quality gate ≥ {pct(gate.fail_below)} %: {gate.status}\n", style)
    for note in section.notes:
        intro.append("note: ", "yellow").append(_t(note, limit=400)).append("\n")
    return [intro]


@section_view.register
def _summary(section: Summary) -> list[RenderableType]:
    """Compact enough for 80 columns: short revision names (each distinct; the full names in
    the caption), the interval under the accuracy, file size in the details."""
    names, budget = section.names, section.budget
    legend = Text()
    for rev in section.revisions:
        legend.append(f"{names[rev.spec]}", "bold").append(" = ")
        legend.append_text(_t(display_name(rev.spec), limit=400)).append("\n")
    legend.rstrip()
    table = Table(
        title="Summary (best first)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        collapse_padding=True,
        pad_edge=False,
        caption=legend,
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("revision", no_wrap=True, style="bold")
    table.add_column(f"acc %\n{CI}", justify="right", no_wrap=True)
    if budget is not None:  # the spotter's figure beside the accuracy on the words
        table.add_column(f"miss\n@{budget:g}/h", justify="right")
    table.add_column("F1 %", justify="right")
    table.add_column("ens.\nacc %", justify="right")
    table.add_column("ms/\nclip", justify="right")
    table.add_column("params", justify="right")
    table.add_column("vs best", overflow="fold")
    for rev in section.revisions:
        acc, paired = rev.accuracy, rev.paired
        vs_style = "green" if not paired else ("red" if paired.significant else "")
        table.add_row(
            str(rev.rank),
            _t(names[rev.spec]),
            f"{pct(acc.mean)}\n{pct(acc.low)}–{pct(acc.high)}",
            *([miss_text(rev)] if budget is not None else []),
            pct(rev.macro_f1.mean),
            pct(rev.ensemble_accuracy.mean),
            f"{rev.latency_ms:.2f}",
            human_count(rev.parameters).replace(" ", ""),
            _t(p_text(paired).replace(" (significant)", " *"), vs_style),
        )
    return [table]


@section_view.register
def _differing(section: DifferingParams) -> list[RenderableType]:
    if not section.params:
        return []
    table = Table(title="Parameters that differ", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("param", overflow="fold")
    for rev in section.revisions:
        table.add_column(_t(section.names[rev.spec]), overflow="fold")
    for name in section.params:
        cells = (_t(rev.params.get(name, "–"), limit=60) for rev in section.revisions)
        table.add_row(_t(name, limit=60), *cells)
    return [table]


@section_view.register
def _methods(section: Methods) -> list[RenderableType]:
    return []  # the method sits under the accuracy plot, which a terminal does not show


@section_view.register
def _tracker_task(section: TrackerTask) -> list[RenderableType]:
    return []  # the Markdown report links it


@section_view.register
def _spotter(section: Spotter) -> list[RenderableType]:
    """The spotter's figures and the DET curve as text tables."""
    names = section.names
    first = section.first
    table = Table(
        title=f"Spotting: threshold for {first.budget:g} false alarm(s)/h "
        "(out of fold); test negatives, clip level, 95 % Poisson CI",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("revision", style="bold", no_wrap=True)
    table.add_column("threshold", justify="right")
    table.add_column("miss %", justify="right")
    table.add_column("false alarms", overflow="fold")
    det = Table(
        title="DET curve (test split): miss % at most N false alarms/h",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    det.add_column("FA/h ≤", justify="right")
    for rev, spot in section.spotted:
        table.add_row(
            _t(names[rev.spec]),
            f"{spot.threshold:.3f}",
            miss_text(rev),
            _t(rate_text(spot.at_budget)),
        )
        det.add_column(_t(names[rev.spec]), justify="right")
    for i, budget in enumerate(DET_BUDGETS):
        cells = []
        for _, spot in section.spotted:
            rows = spot.det_text
            cells.append(pct(rows[i].miss_rate) if i < len(rows) else "–")
        det.add_row(f"{budget:g}", *cells)
    return [table, det]


def _origin_text(origin: Origin) -> Text:
    text = Text()
    if origin.registry:
        text.append("registry ", "dim").append(_t(origin.registry, "bold green")).append("\n")
    if origin.commit:
        text.append("git ", "dim").append(origin.commit[:12], "cyan")
        text.append("  ").append(_t(origin.subject or "", limit=70)).append("\n")
    if origin.clearml_task:
        text.append("ClearML ", "dim").append(_t(origin.clearml_task, "cyan"))
        if origin.web_url:
            url = clean_text(origin.web_url, 400)
            text.append("  ").append(url, Style(link=url, underline=True))
        elif origin.session:
            text.append("  offline session ").append(_t(origin.session, limit=400))
        text.append("\n")
    if origin.path:
        text.append("folder ", "dim").append(_t(origin.path, limit=400)).append("\n")
    return text


def _head(rev: RevisionResult, differing: list[str]) -> Text:
    head = Text()
    head.append(f"accuracy {with_ci(rev.accuracy)}", "bold")
    head.append(f"   macro F1 {pct(rev.macro_f1.mean)}")
    head.append(f"   ensemble {pct(rev.ensemble_accuracy.mean)}\n")
    head.append(f"{human_count(rev.parameters)} parameters, {human_bytes(rev.file_bytes)} ")
    head.append(f"per fold file, {rev.folds} folds, {rev.latency_ms:.2f} ms/clip\n")
    paired = rev.paired
    if paired:
        head.append("vs best: ").append(_t(paired.method))
        head.append(f", only best right {paired.b}, only this right {paired.c}: ")
        head.append(p_text(paired), "red" if paired.significant else "")
        head.append("\n")
    shown = {k: v for k, v in rev.params.items() if "." not in k or k in differing}
    params = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    return head.append("params: ", "dim").append(_t(params, limit=2000))


def _per_class(rev: RevisionResult) -> Table:
    table = Table(title="per class (%)", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("label", overflow="fold")
    for name in ("precision", "recall", "F1", "clips"):
        table.add_column(name, justify="right")
    for row in rev.per_class:
        table.add_row(
            _t(row.label, limit=40),
            pct(row.precision),
            pct(row.recall),
            pct(row.f1),
            str(row.support),
        )
    return table


def _first_rows(
    rows: FirstRows | None,
    title: str,
    empty: str,
    columns: dict[str, str],
    cells: Callable[..., list],
    what: str,
) -> RenderableType:
    """A table of the first rows; ``columns``: header -> justify (the first folds)."""
    if rows is None:  # a comparison from before the section
        return Text()
    if not rows.total:
        return Text(f"{title}: {empty}\n", "dim")
    table = Table(box=box.SIMPLE_HEAD)
    for n, (name, justify) in enumerate(columns.items()):
        table.add_column(name, justify=justify, overflow="fold", ratio=1 if n == 0 else None)
    for row in rows.rows:
        table.add_row(*cells(row))
    more = f"{len(rows.rows)} of {rows.total} {what}; all of them are in {JSON_NAME}\n"
    # the title above the table, not in it: a table's title wraps at the table's width
    return Group(Text(title, "italic"), table, Text(more, "dim") if rows.more else Text())


def _confusion_grid(rev: RevisionResult, labels: list[str]) -> Table:
    """Rows: true label, columns: predicted (numbered, names in the row headers)."""
    table = Table(box=box.SIMPLE, padding=(0, 1))
    table.add_column("true \\ predicted", overflow="fold", max_width=24)
    for j in range(len(labels)):
        table.add_column(str(j + 1), justify="right", min_width=3)
    for i, (label, row) in enumerate(zip(labels, rev.confusion, strict=True)):
        cells = [Text(f"{100 * v:.0f}", style=_heat(v)) for v in row]
        table.add_row(Text.assemble(f"{i + 1} ", _t(label, limit=30)), *cells)
    return table


@section_view.register
def _revision(section: RevisionDetail) -> list[RenderableType]:
    rev = section.rev
    speakers = _first_rows(
        section.speakers,
        "per speaker, worst first (%)",
        "speakers unknown (no test file name names one)",
        {"speaker": "left", "clips": "right", "accuracy": "right", "ensemble": "right"},
        lambda r: [
            _t(r.speaker, limit=40),
            str(r.clips),
            pct(r.accuracy),
            pct(r.ensemble_accuracy),
        ],
        "speakers",
    )
    misclassified = _first_rows(
        section.misclassified,
        "misclassified test clips, most confident first (ensemble)",
        "none, the fold ensemble gets every test clip right",
        {"file (in data/input)": "left", "true": "left", "predicted": "left", "p %": "right"},
        lambda r: [
            _t(r.source, limit=300),
            _t(r.true, limit=40),
            _t(r.predicted, limit=40),
            pct(r.probability),
        ],
        "misclassified clips",
    )
    rule = Rule(Text(f"{rev.rank}. ", "bold").append(_t(display_name(rev.spec))))
    grid_title = Text("confusion % (rows: true label, columns: predicted)", "italic")
    return [
        Group(
            rule,
            _origin_text(rev.origin),
            _head(rev, section.differing),
            _per_class(rev),
            speakers,
            misclassified,
            grid_title,
            _confusion_grid(rev, section.labels),
        )
    ]


def print_report(path: Path, console: Console) -> None:
    """Print the comparison at ``path`` (.md or .json); raises :class:`ReportError`."""
    path = Path(path)
    data = load_comparison(path)
    if data is not None:
        view: RenderableType = comparison_view(data)
    elif not path.is_file():
        raise ReportError(
            f"{path}: no comparison report yet; run `kwsops run` or `kwsops validate` first"
        )
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix != ".md" or not is_comparison_markdown(text):
            raise ReportError(
                f"{path}: not a comparison report; give reports/comparison_versions.md "
                "(or its .json), or run `kwsops report` in the workspace"
            )
        view = Markdown(clean_markdown(text))
    if console.is_terminal:
        console.print(view)
        return
    with console.capture() as captured:  # piped: no padding at the ends of lines
        console.print(view)
    console.file.write("\n".join(line.rstrip() for line in captured.get().splitlines()) + "\n")


def is_comparison_markdown(text: str) -> bool:
    """Whether ``text`` is a report Validate wrote (its first line is the report's title)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first == COMPARISON_TITLE


def clean_markdown(text: str) -> str:
    """A Markdown file's lines with control characters removed (newlines kept)."""
    return "\n".join(clean_text(line, 10_000) for line in text.splitlines())
