"""The comparison report: reports/comparison_versions.md and its PNG plots, from the comparison
dict Validate builds (also saved as comparison_versions.json for the terminal and the console).

Anything that comes from a file or a folder name (labels, commit subjects, paths) goes through
:func:`kwsops.text.escape_md` (see :mod:`kwsops.text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from kwsops.audio.layout import speakers_phrase
from kwsops.compare.breakdown import SHOWN
from kwsops.compare.spotting import miss_text, section_lines
from kwsops.text import escape_md, md_url, plot_text, plural

CI = "95 % CI"
JSON_NAME = "comparison_versions.json"
COMPARISON_TITLE = "# Comparison of model revisions"  # the first line of every Markdown report


def display_name(spec: str) -> str:
    """A spec as shown to people: a git sha cut to 10 characters."""
    match = re.match(r"^git:([0-9a-f]{40}):(.*)$", str(spec))
    return f"git:{match.group(1)[:10]}:{match.group(2)}" if match else str(spec)


def _short(spec: str, width: int) -> str:
    kind, _, rest = str(spec).partition(":")
    if kind == "workspace":
        return "ws " + rest.replace("batch_", "b")
    if kind == "git":
        rev, _, batch = rest.rpartition(":")
        return f"{rev[:width]} {batch.replace('batch_', 'b')}"
    if kind == "clearml":
        return "cml " + rest.removeprefix("offline-")[:width]
    return str(spec)


def short_names(specs: list[str]) -> dict[str, str]:
    """Names that tell the compared revisions apart in a narrow column: ``ws b16``,
    ``57c50e6 b16``, ``cml 683b747``; a sha or task id grows only where two would read alike.
    Never a cut that makes two the same: the full names are in the report beside them."""
    specs = list(dict.fromkeys(str(s) for s in specs))
    for width in (7, 10, 16, 64):
        names = {spec: _short(spec, width) for spec in specs}
        if len(set(names.values())) == len(specs):
            return names
    return {spec: spec for spec in specs}


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def with_ci(stat: dict) -> str:
    return f"{pct(stat['mean'])} % ({pct(stat['low'])}–{pct(stat['high'])})"


def split_sentence(test: dict) -> str:
    """Which test split the report used, in one sentence (two when its share landed far from
    test_size); raw text (it can hold a list's path or a speaker's name): escape it for the
    medium."""
    split = test.get("split") or {}
    kind, share = split.get("kind"), split.get("test_size")
    sized = f"test_size {share}, seed {split.get('seed')}" if share else ""
    far = f" The {split['share_note']}." if split.get("share_note") else ""
    if kind == "official":
        return f"Test split: the official one, the clips {split.get('note') or 'its list'} names."
    if kind == "speaker":
        return f"Test split: held-out speakers ({sized}), never heard in training.{far}"
    if kind == "clip":
        why = split.get("note") or "speakers unknown"
        return (
            f"Test split: clip by clip ({sized}), {why}: test voices may also be in training.{far}"
        )
    return ""


def data_phrase(test: dict) -> str:
    """``6 labels from 2 of the 16 speakers in the data set``, ``6 labels, speakers unknown``."""
    labels = plural(len(test["labels"]), "label")
    total = test.get("speakers_total", test["speakers"])
    if not total:
        return f"{labels}, {speakers_phrase(0)}"
    return f"{labels} from {test['speakers']} of the {speakers_phrase(total)} in the data set"


def more_line(total: int, what: str) -> list[str]:
    if total <= SHOWN:
        return []
    return [f"{SHOWN} of {total} {what}; all of them are in {JSON_NAME}.", ""]


def human_count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def p_text(paired: dict | None) -> str:
    if not paired:
        return "best"
    return f"p = {paired['p_value']:.3g}" + (" (significant)" if paired["p_value"] < 0.05 else "")


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" * len(header)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def open_lines(rev: dict) -> list[str]:
    """How to open a revision: ClearML link or session, git commit, workspace folder."""
    origin, lines = rev.get("origin") or {}, []
    if origin.get("registry"):
        lines.append(f"- registry version **{escape_md(origin['registry'])}**")
    if origin.get("commit"):
        subject = escape_md(origin.get("subject") or "")
        lines.append(
            f"- git commit `{origin['commit'][:12]}` ({escape_md(origin.get('rev'))}): {subject}"
        )
        lines.append(
            f"  (`git show {origin['commit'][:12]}`, models: `dvc get . data/models --rev {origin['commit'][:12]}`)"
        )
    if origin.get("clearml_task"):
        task = escape_md(origin["clearml_task"])
        if origin.get("web_url"):
            lines.append(f"- ClearML task {task}: [open in ClearML]({md_url(origin['web_url'])})")
        elif origin.get("session"):
            lines.append(
                f"- ClearML task {task}, offline session {escape_md(origin['session'], 400)} (`kwsops clearml import` uploads it)"
            )
        else:
            lines.append(f"- ClearML task {task}")
    if origin.get("path"):
        lines.append(f"- workspace folder {escape_md(origin['path'], 400)}")
    return lines


def summary_section(data: dict) -> list[str]:
    names = short_names([rev["spec"] for rev in data["revisions"]])
    header = ["rank", "revision", f"accuracy ({CI})", "macro F1", "ensemble acc."]
    header += ["ms/clip", "parameters", "file", "vs best"]
    budget = next((r["spotting"]["budget"] for r in data["revisions"] if r.get("spotting")), None)
    if budget is not None:  # the spotter's figure beside the accuracy on the words
        header.insert(3, f"miss @ {budget:g} FA/h")
    rows = []
    for rev in data["revisions"]:
        row = [str(rev["rank"]), escape_md(names[rev["spec"]]), with_ci(rev["accuracy"])]
        if budget is not None:
            row.append(miss_text(rev))
        row += [pct(rev["macro_f1"]["mean"]), pct(rev["ensemble_accuracy"]["mean"])]
        row += [f"{rev['latency_ms']:.2f}", human_count(rev["parameters"])]
        row += [human_bytes(rev["file_bytes"]), p_text(rev.get("paired"))]
        rows.append(row)
    legend = "; ".join(
        f"**{escape_md(names[rev['spec']])}** = {escape_md(display_name(rev['spec']), 400)}"
        for rev in data["revisions"]
    )
    align = "rllrrrrrrl" if budget is not None else "rllrrrrrl"
    return ["## Summary", "", *_table(header, rows, align), f"Revisions: {legend}.", ""]


def params_section(data: dict) -> list[str]:
    """The parameters that differ between the compared revisions, side by side."""
    revisions = data["revisions"]
    diff = data.get("differing_params") or []
    lines = ["## Parameters that differ", ""]
    if len(revisions) < 2:
        return []
    if not diff:
        return [*lines, "The compared revisions share every training parameter.", ""]
    names = short_names([rev["spec"] for rev in revisions])
    header = ["param", *(escape_md(names[rev["spec"]]) for rev in revisions)]
    rows = [[escape_md(name), *(escape_md(rev["params"].get(name, "–")) for rev in revisions)]
            for name in diff]  # fmt: skip
    return [*lines, *_table(header, rows)]


def confusion_table(rev: dict, labels: list[str]) -> list[str]:
    names = [escape_md(label, 40) for label in labels]
    rows = [
        [f"**{name}**", *[pct(v) for v in row]]
        for name, row in zip(names, rev["confusion"], strict=True)
    ]
    return _table(["true \\\\ predicted (%)", *names], rows, "l" + "r" * len(names))


def revision_section(rev: dict, labels: list[str]) -> list[str]:
    lines = [f"## {rev['rank']}. {escape_md(display_name(rev['spec']))}", ""]
    if rev.get("curves_plot"):
        lines += [f"![training curves of {escape_md(display_name(rev['spec']))}]"
                  f"({rev['curves_plot']})", ""]  # fmt: skip
    if rev.get("requested") and rev["requested"] != rev["spec"]:
        lines.append(f"- requested as {escape_md(rev['requested'])}")
    lines += open_lines(rev)
    folds = ", ".join(pct(a) for a in rev["accuracy"]["per_fold"])
    lines.append(f"- accuracy {with_ci(rev['accuracy'])}; per fold: {folds}")
    lines.append(f"- macro F1 {with_ci(rev['macro_f1'])}")
    lines.append(f"- fold ensemble accuracy {with_ci(rev['ensemble_accuracy'])}")
    if rev.get("features_recomputed"):
        lines.append(
            "- features recomputed from the test clips in data/output with its own settings"
        )
    paired = rev.get("paired")
    if paired:
        lines.append(
            f"- paired test against the best ({escape_md(display_name(paired['against']))}): "
            f"{escape_md(paired['method'])}, only the best right on {paired['b']} clips, "
            f"only this one on {paired['c']}: {p_text(paired)}"
        )
    else:
        lines.append("- the best revision: the others are tested against it")
    lines += ["", "### Params", ""]
    params = [[escape_md(k), escape_md(v)] for k, v in sorted(rev["params"].items())]
    lines += _table(["param", "value"], params)
    lines += ["### Per class", ""]
    per_class = [
        [escape_md(c["label"], 60), pct(c["precision"]), pct(c["recall"]), pct(c["f1"]),
         str(c["support"])]
        for c in rev["per_class"]
    ]  # fmt: skip
    lines += _table(["label", "precision %", "recall %", "F1 %", "clips"], per_class, "lrrrr")
    lines += speaker_section(rev) + misclassified_section(rev)
    lines += [
        "### Confusion matrix",
        "",
        "Rows: true label; mean over folds, each row sums to 100 %.",
        "",
    ]
    if rev.get("plot"):
        lines += [
            f"![confusion matrix of {escape_md(display_name(rev['spec']))}]({rev['plot']})",
            "",
        ]
    return lines + confusion_table(rev, labels)


def _first_rows(
    rows: list[dict] | None, title: str, empty: str, header: list[str], align: str,
    cells: Callable[[dict], list[str]], what: str,
) -> list[str]:  # fmt: skip
    """A section of the first SHOWN rows (None: a report from before the section: nothing)."""
    if rows is None:
        return []
    if not rows:
        return [title, "", empty, ""]
    table = _table(header, [cells(row) for row in rows[:SHOWN]], align)
    return [title, "", *table, *more_line(len(rows), what)]


def speaker_section(rev: dict) -> list[str]:
    return _first_rows(
        rev.get("per_speaker"),
        "### Per speaker (test split, worst first)",
        "Speakers unknown: no test clip's file name names its speaker.",
        ["speaker", "clips", "accuracy %", "ensemble %"],
        "lrrr",
        lambda r: [
            escape_md(r["speaker"], 60),
            str(r["clips"]),
            pct(r["accuracy"]),
            pct(r["ensemble_accuracy"]),
        ],  # fmt: skip
        "speakers",
    )


def misclassified_section(rev: dict) -> list[str]:
    return _first_rows(
        rev.get("misclassified"),
        "### Misclassified test clips (fold ensemble, most confident first)",
        "None: the fold ensemble classifies every test clip correctly.",
        ["file (in data/input)", "true", "predicted", "probability %"],
        "lllr",
        lambda r: [
            escape_md(r["source"], 120),
            escape_md(r["true"], 40),
            escape_md(r["predicted"], 40),
            pct(r["probability"]),
        ],  # fmt: skip
        "misclassified clips",
    )


def render_markdown(data: dict) -> str:
    test, gate = data["test"], data.get("gate") or {}
    best = data["revisions"][0]
    lines = [COMPARISON_TITLE, ""]
    lines.append(
        f"{plural(test['clips'], 'held-out test clip')} of {data_phrase(test)} "
        f"(data/spec\\_ds test split), written {escape_md(data['created'])}."
    )
    if split_sentence(test):
        lines += ["", escape_md(split_sentence(test), 400)]
    lines.append("")
    lines.append(
        f"Best: **{escape_md(display_name(best['spec']))}**, accuracy {with_ci(best['accuracy'])}."
    )
    if gate.get("status") in ("passed", "failed"):
        verdict = "passed" if gate["status"] == "passed" else "**FAILED**"
        lines.append(f"Quality gate (accuracy ≥ {pct(gate['fail_below'])} %): {verdict}.")
    for note in data.get("notes") or []:  # a paragraph each
        lines += ["", f"Note: {escape_md(note, 400)}"]
    lines.append("")
    lines += summary_section(data)
    lines += params_section(data)
    if data.get("plots", {}).get("accuracy"):
        lines += [f"![accuracy by revision]({data['plots']['accuracy']})", ""]
    method = data["method"]
    lines.append(
        f"Accuracy, precision, recall and F1 are means over each revision's fold models; "
        f"intervals are percentile bootstraps over the test clips ({method['n_boot']} "
        f"resamples, seed {method['seed']}). Ensemble: mean of the fold softmaxes. "
        f"Paired test: McNemar on the ensembles' per-clip correctness against the best "
        f"(exact binomial below {method['exact_below']} discordant clips). "
        f"ms/clip: one model, one CPU thread, batch of {method['latency_batch']}, median of "
        f"{method['latency_repeats']} runs. File: one fold's model file."
    )
    lines.append("")
    names = {
        spec: escape_md(name)
        for spec, name in short_names([r["spec"] for r in data["revisions"]]).items()
    }
    lines += section_lines(data["revisions"], names, data.get("plots", {}).get("det"))
    task = data.get("validation_task") or {}
    if task.get("task_id"):
        link = (
            f"[{escape_md(task['task_id'])}]({md_url(task['web_url'])})"
            if task.get("web_url")
            else escape_md(task["task_id"])
        )
        lines += [f"ClearML task `validation`: {link} ({escape_md(task.get('mode'))}).", ""]
    for rev in data["revisions"]:
        lines += revision_section(rev, test["labels"])
    return "\n".join(lines).rstrip() + "\n"


HTML_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}img{{max-width:100%}}</style></head>
<body>
{body}</body></html>
"""


def render_html(markdown: str, title: str = "Comparison of model revisions") -> str:
    """The report as one HTML page for a browser (the plots stay beside it in plots/).
    Raw HTML in the Markdown is not passed through: user strings are escaped already."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return HTML_PAGE.format(title=title, body=body)


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


def plot_accuracy(revisions: list[dict], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 1.2 + 0.45 * len(revisions)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [plot_text(display_name(r["spec"])) for r in revisions][::-1]
    acc = [r["accuracy"] for r in revisions][::-1]
    means = [100 * a["mean"] for a in acc]
    errors = [
        [100 * (a["mean"] - a["low"]) for a in acc],
        [100 * (a["high"] - a["mean"]) for a in acc],
    ]
    ax.barh(names, means, xerr=errors, color="#4c78a8", capsize=3)
    ensemble = [100 * r["ensemble_accuracy"]["mean"] for r in revisions][::-1]
    ax.scatter(ensemble, names, color="#f58518", zorder=3, label="fold ensemble")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"test accuracy % (mean over folds, {CI})")
    ax.legend(loc="lower right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def plot_curves(history: list[list[dict]], title: str, path: Path) -> Path:
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
