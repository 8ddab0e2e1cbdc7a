"""`kwsops report`: the comparison printed with rich (tables, coloured confusion grids).

Reads reports/comparison_versions.json (the numbers behind the Markdown report); without it,
renders the Markdown file itself. Every string from a file becomes a rich ``Text`` after
:func:`kwsops.text.clean_text`, so nothing is parsed as console markup or reaches the terminal
as a control sequence. Works at 80 columns and when piped (rich drops colour without a TTY).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rich import box
from rich.color import Color
from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text

from kwsops.compare.breakdown import SHOWN
from kwsops.compare.markdown import (
    CI,
    COMPARISON_TITLE,
    JSON_NAME,
    data_phrase,
    display_name,
    human_bytes,
    human_count,
    p_text,
    pct,
    plural,
    short_names,
    split_sentence,
    with_ci,
)
from kwsops.compare.spotting import DET_BUDGETS, miss_text, rate_text
from kwsops.text import clean_text


class ReportError(ValueError):
    """No report to show, or it cannot be read; the message says what to run."""


def json_path_for(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def load_comparison(path: Path) -> dict | None:
    """The comparison dict beside a Markdown report (or at ``path`` if it is the JSON)."""
    source = Path(path) if Path(path).suffix == ".json" else json_path_for(path)
    if not source.is_file():
        return None
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        data["revisions"][0]["accuracy"]["mean"]  # noqa: B018
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ReportError(
            f"{source}: not a kwsops comparison ({exc}); run Validate again"
        ) from None
    return data


def _t(text: object, style: str = "", limit: int = 200) -> Text:
    return Text(clean_text(text, limit), style=style)


def _heat(value: float) -> Style:
    """White to dark blue; light text on dark cells."""
    value = min(max(float(value), 0.0), 1.0)
    r, g, b = (int(255 - (255 - c) * value) for c in (8, 69, 148))
    return Style(color="white" if value > 0.55 else "black", bgcolor=Color.from_rgb(r, g, b))


def summary_table(data: dict) -> Table:
    """Compact enough for 80 columns: short revision names (each distinct; the full names in
    the caption), the interval under the accuracy, file size in the details."""
    names = short_names([rev["spec"] for rev in data["revisions"]])
    legend = Text()
    for rev in data["revisions"]:
        legend.append(f"{names[rev['spec']]}", "bold").append(" = ")
        legend.append_text(_t(display_name(rev["spec"]), limit=400)).append("\n")
    legend.rstrip()
    table = Table(title="Summary (best first)", box=box.SIMPLE_HEAD, title_justify="left",
                  collapse_padding=True, pad_edge=False, caption=legend,
                  caption_justify="left")  # fmt: skip
    table.add_column("#", justify="right")
    table.add_column("revision", no_wrap=True, style="bold")
    table.add_column(f"acc %\n{CI}", justify="right", no_wrap=True)
    budget = next((r["spotting"]["budget"] for r in data["revisions"] if r.get("spotting")), None)
    if budget is not None:  # the spotter's figure beside the accuracy on the words
        table.add_column(f"miss\n@{budget:g}/h", justify="right")
    table.add_column("F1 %", justify="right")
    table.add_column("ens.\nacc %", justify="right")
    table.add_column("ms/\nclip", justify="right")
    table.add_column("params", justify="right")
    table.add_column("vs best", overflow="fold")
    for rev in data["revisions"]:
        acc = rev["accuracy"]
        paired = rev.get("paired")
        vs_style = "green" if not paired else ("red" if paired["p_value"] < 0.05 else "")
        table.add_row(
            str(rev["rank"]),
            _t(names[rev["spec"]]),
            f"{pct(acc['mean'])}\n{pct(acc['low'])}–{pct(acc['high'])}",
            *([miss_text(rev)] if budget is not None else []),
            pct(rev["macro_f1"]["mean"]),
            pct(rev["ensemble_accuracy"]["mean"]),
            f"{rev['latency_ms']:.2f}",
            human_count(rev["parameters"]).replace(" ", ""),
            _t(p_text(paired).replace(" (significant)", " *"), vs_style),
        )
    return table


def params_table(data: dict) -> Table | None:
    """The parameters that differ between the compared revisions, side by side."""
    revisions, diff = data["revisions"], data.get("differing_params") or []
    if len(revisions) < 2 or not diff:
        return None
    names = short_names([rev["spec"] for rev in revisions])
    table = Table(title="Parameters that differ", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("param", overflow="fold")
    for rev in revisions:
        table.add_column(_t(names[rev["spec"]]), overflow="fold")
    for name in diff:
        table.add_row(_t(name, limit=60), *(_t(rev["params"].get(name, "–"), limit=60)
                                            for rev in revisions))  # fmt: skip
    return table


def per_class_table(rev: dict) -> Table:
    table = Table(title="per class (%)", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("label", overflow="fold")
    for name in ("precision", "recall", "F1", "clips"):
        table.add_column(name, justify="right")
    for row in rev["per_class"]:
        table.add_row(
            _t(row["label"], limit=40),
            pct(row["precision"]),
            pct(row["recall"]),
            pct(row["f1"]),
            str(row["support"]),
        )
    return table


def _more(total: int, what: str) -> Text:
    if total <= SHOWN:
        return Text()
    return Text(f"{SHOWN} of {total} {what}; all of them are in {JSON_NAME}\n", "dim")


def _first_rows(
    rows: list[dict] | None, title: str, empty: str, columns: dict[str, str],
    cells: Callable[[dict], list], what: str,
) -> RenderableType:  # fmt: skip
    """A table of the first SHOWN rows; ``columns``: header -> justify (the first folds)."""
    if rows is None:  # a comparison from before the section
        return Text()
    if not rows:
        return Text(f"{title}: {empty}\n", "dim")
    table = Table(box=box.SIMPLE_HEAD)
    for n, (name, justify) in enumerate(columns.items()):
        table.add_column(name, justify=justify, overflow="fold", ratio=1 if n == 0 else None)
    for row in rows[:SHOWN]:
        table.add_row(*cells(row))
    # the title above the table, not in it: a table's title wraps at the table's width
    return Group(Text(title, "italic"), table, _more(len(rows), what))


def speaker_table(rev: dict) -> RenderableType:
    return _first_rows(
        rev.get("per_speaker"),
        "per speaker, worst first (%)",
        "speakers unknown (no test file name names one)",
        {"speaker": "left", "clips": "right", "accuracy": "right", "ensemble": "right"},
        lambda r: [
            _t(r["speaker"], limit=40),
            str(r["clips"]),
            pct(r["accuracy"]),
            pct(r["ensemble_accuracy"]),
        ],  # fmt: skip
        "speakers",
    )


def misclassified_table(rev: dict) -> RenderableType:
    return _first_rows(
        rev.get("misclassified"),
        "misclassified test clips, most confident first (ensemble)",
        "none, the fold ensemble gets every test clip right",
        {"file (in data/input)": "left", "true": "left", "predicted": "left", "p %": "right"},
        lambda r: [
            _t(r["source"], limit=300),
            _t(r["true"], limit=40),
            _t(r["predicted"], limit=40),
            pct(r["probability"]),
        ],  # fmt: skip
        "misclassified clips",
    )


def confusion_grid(rev: dict, labels: list[str]) -> Table:
    """Rows: true label, columns: predicted (numbered, names in the row headers)."""
    table = Table(box=box.SIMPLE, padding=(0, 1))
    table.add_column("true \\ predicted", overflow="fold", max_width=24)
    for j in range(len(labels)):
        table.add_column(str(j + 1), justify="right", min_width=3)
    for i, (label, row) in enumerate(zip(labels, rev["confusion"], strict=True)):
        cells = [Text(f"{100 * v:.0f}", style=_heat(v)) for v in row]
        table.add_row(Text.assemble(f"{i + 1} ", _t(label, limit=30)), *cells)
    return table


def origin_text(rev: dict) -> Text:
    origin, text = rev.get("origin") or {}, Text()
    if origin.get("registry"):
        text.append("registry ", "dim").append(_t(origin["registry"], "bold green")).append("\n")
    if origin.get("commit"):
        text.append("git ", "dim").append(origin["commit"][:12], "cyan")
        text.append("  ").append(_t(origin.get("subject") or "", limit=70)).append("\n")
    if origin.get("clearml_task"):
        text.append("ClearML ", "dim").append(_t(origin["clearml_task"], "cyan"))
        if origin.get("web_url"):
            url = clean_text(origin["web_url"], 400)
            text.append("  ").append(url, Style(link=url, underline=True))
        elif origin.get("session"):
            text.append("  offline session ").append(_t(origin["session"], limit=400))
        text.append("\n")
    if origin.get("path"):
        text.append("folder ", "dim").append(_t(origin["path"], limit=400)).append("\n")
    return text


def revision_view(rev: dict, labels: list[str], differing: list[str]) -> RenderableType:
    head = Text()
    head.append(f"accuracy {with_ci(rev['accuracy'])}", "bold")
    head.append(f"   macro F1 {pct(rev['macro_f1']['mean'])}")
    head.append(f"   ensemble {pct(rev['ensemble_accuracy']['mean'])}\n")
    head.append(f"{human_count(rev['parameters'])} parameters, {human_bytes(rev['file_bytes'])} ")
    head.append(f"per fold file, {rev['folds']} folds, {rev['latency_ms']:.2f} ms/clip\n")
    paired = rev.get("paired")
    if paired:
        head.append("vs best: ").append(_t(paired["method"]))
        head.append(f", only best right {paired['b']}, only this right {paired['c']}: ")
        head.append(p_text(paired), "red" if paired["p_value"] < 0.05 else "")
        head.append("\n")
    shown = {k: v for k, v in rev["params"].items() if "." not in k or k in differing}
    params = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    head.append("params: ", "dim").append(_t(params, limit=2000))
    rule = Rule(Text(f"{rev['rank']}. ", "bold").append(_t(display_name(rev["spec"]))))
    grid_title = Text("confusion % (rows: true label, columns: predicted)", "italic")
    return Group(
        rule,
        origin_text(rev),
        head,
        per_class_table(rev),
        speaker_table(rev),
        misclassified_table(rev),
        grid_title,
        confusion_grid(rev, labels),
    )


def comparison_view(data: dict) -> RenderableType:
    test, gate = data["test"], data.get("gate") or {}
    intro = Text("Comparison of model revisions\n", "bold")
    intro.append(f"{plural(test['clips'], 'test clip')} of {data_phrase(test)}; ")
    intro.append(f"written {clean_text(data['created'])}\n")
    if split_sentence(test):
        intro.append(_t(split_sentence(test), limit=400)).append("\n")
    if gate.get("status") in ("passed", "failed"):
        style = "green" if gate["status"] == "passed" else "bold red"
        intro.append(f"quality gate ≥ {pct(gate['fail_below'])} %: {gate['status']}\n", style)
    for note in data.get("notes") or []:
        intro.append("note: ", "yellow").append(_t(note, limit=400)).append("\n")
    differing = data.get("differing_params") or []
    views = [revision_view(rev, test["labels"], differing) for rev in data["revisions"]]
    diff = params_table(data)
    spot = spotting_view(data)
    return Group(intro, summary_table(data), *([diff] if diff else []), *spot, *views)


def spotting_view(data: dict) -> list[RenderableType]:
    """The spotter's figures and the DET curve as text tables (none without them)."""
    shown = [rev for rev in data["revisions"] if rev.get("spotting")]
    if not shown:
        return []
    names = short_names([rev["spec"] for rev in data["revisions"]])
    first = shown[0]["spotting"]
    table = Table(title=f"Spotting: threshold for {first['budget']:g} false alarm(s)/h "
                  "(out of fold); test negatives, clip level, 95 % Poisson CI",
                  box=box.SIMPLE_HEAD, title_justify="left")  # fmt: skip
    table.add_column("revision", style="bold", no_wrap=True)
    table.add_column("threshold", justify="right")
    table.add_column("miss %", justify="right")
    table.add_column("false alarms", overflow="fold")
    for rev in shown:
        spot = rev["spotting"]
        table.add_row(_t(names[rev["spec"]]), f"{spot['threshold']:.3f}",
                      miss_text(rev), _t(rate_text(spot["at_budget"])))  # fmt: skip
    det = Table(title="DET curve (test split): miss % at most N false alarms/h",
                box=box.SIMPLE_HEAD, title_justify="left")  # fmt: skip
    det.add_column("FA/h ≤", justify="right")
    for rev in shown:
        det.add_column(_t(names[rev["spec"]]), justify="right")
    for i, budget in enumerate(DET_BUDGETS):
        cells = []
        for rev in shown:
            rows = rev["spotting"].get("det_text") or []
            miss = rows[i]["miss_rate"] if i < len(rows) else None
            cells.append("–" if miss is None else pct(miss))
        det.add_row(f"{budget:g}", *cells)
    return [table, det]


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
