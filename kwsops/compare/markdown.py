"""The comparison as Markdown (reports/comparison_versions.md) and as one HTML page made from it:
each section of :mod:`kwsops.compare.sections` rendered to lines.

Anything that comes from a file or a folder name (labels, commit subjects, paths) goes through
:func:`kwsops.text.escape_md` (see :mod:`kwsops.text`).
"""

from __future__ import annotations

from functools import singledispatch

from kwsops.compare.model import JSON_NAME, Comparison, Origin, RevisionResult
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
from kwsops.keywords import DEFAULT_THRESHOLD
from kwsops.text import escape_md, html_page, md_url, plural


def render_markdown(comparison: Comparison) -> str:
    lines = [line for section in sections(comparison) for line in section_lines(section)]
    return "\n".join(lines).rstrip() + "\n"


def render_html(markdown: str, title: str = "Comparison of model revisions") -> str:
    """The report as one HTML page for a browser (the plots stay beside it in plots/).
    Raw HTML in the Markdown is not passed through: user strings are escaped already."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return html_page(title, body, style="body{max-width:70em}img{max-width:100%}")


def _table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" * len(header)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


@singledispatch
def section_lines(section: Section) -> list[str]:
    raise TypeError(f"no Markdown for {type(section).__name__}")


@section_lines.register
def _intro(section: Intro) -> list[str]:
    test, gate, best = section.test, section.gate, section.best
    lines = [COMPARISON_TITLE, ""]
    lines.append(
        f"{plural(test.clips, 'held-out test clip')} of {data_phrase(test)} "
        f"(data/spec\\_ds test split), written {escape_md(section.created)}."
    )
    if split_sentence(test):
        lines += ["", escape_md(split_sentence(test), 400)]
    lines.append("")
    lines.append(
        f"Best: **{escape_md(display_name(best.spec))}**, accuracy {with_ci(best.accuracy)}."
    )
    if gate.status in ("passed", "failed"):
        verdict = "passed" if gate.status == "passed" else "**FAILED**"
        lines.append(f"Quality gate (accuracy ≥ {pct(gate.fail_below)} %): {verdict}.")
    for note in section.notes:  # a paragraph each
        lines += ["", f"Note: {escape_md(note, 400)}"]
    return [*lines, ""]


@section_lines.register
def _summary(section: Summary) -> list[str]:
    names, budget = section.names, section.budget
    header = ["rank", "revision", f"accuracy ({CI})", "macro F1", "ensemble acc."]
    header += ["ms/clip", "parameters", "file", "vs best"]
    if budget is not None:  # the spotter's figure beside the accuracy on the words
        header.insert(3, f"miss @ {budget:g} FA/h")
    rows = []
    for rev in section.revisions:
        row = [str(rev.rank), escape_md(names[rev.spec]), with_ci(rev.accuracy)]
        if budget is not None:
            row.append(miss_text(rev))
        row += [pct(rev.macro_f1.mean), pct(rev.ensemble_accuracy.mean)]
        row += [f"{rev.latency_ms:.2f}", human_count(rev.parameters)]
        row += [human_bytes(rev.file_bytes), p_text(rev.paired)]
        rows.append(row)
    legend = "; ".join(
        f"**{escape_md(names[rev.spec])}** = {escape_md(display_name(rev.spec), 400)}"
        for rev in section.revisions
    )
    align = "rllrrrrrrl" if budget is not None else "rllrrrrrl"
    return ["## Summary", "", *_table(header, rows, align), f"Revisions: {legend}.", ""]


@section_lines.register
def _differing(section: DifferingParams) -> list[str]:
    lines = ["## Parameters that differ", ""]
    if not section.params:
        return [*lines, "The compared revisions share every training parameter.", ""]
    revisions, names = section.revisions, section.names
    header = ["param", *(escape_md(names[rev.spec]) for rev in revisions)]
    rows = [
        [escape_md(name), *(escape_md(rev.params.get(name, "–")) for rev in revisions)]
        for name in section.params
    ]
    return [*lines, *_table(header, rows)]


@section_lines.register
def _methods(section: Methods) -> list[str]:
    method = section.method
    lines = [f"![accuracy by revision]({section.accuracy_plot})", ""]
    return [
        *(lines if section.accuracy_plot else []),
        f"Accuracy, precision, recall and F1 are means over each revision's fold models; "
        f"intervals are percentile bootstraps over the test clips ({method.n_boot} "
        f"resamples, seed {method.seed}). Ensemble: mean of the fold softmaxes. "
        f"Paired test: McNemar on the ensembles' per-clip correctness against the best "
        f"(exact binomial below {method.exact_below} discordant clips). "
        f"ms/clip: one model, one CPU thread, batch of {method.latency_batch}, median of "
        f"{method.latency_repeats} runs. File: one fold's model file.",
        "",
    ]


@section_lines.register
def _spotter(section: Spotter) -> list[str]:
    """Per revision the figures at its operating threshold and at DEFAULT_THRESHOLD, then the
    DET curve as a PNG and as a table each."""
    first = section.first
    names = {spec: escape_md(name) for spec, name in section.names.items()}
    lines = [
        "## Spotting",
        "",
        f"Words missed, and false alarms per hour on the test split's `_unknown_` speech and "
        f"`_silence_` (each clip counted as {first.clip_seconds:.1f} s of audio: a clip-level "
        f"estimate; 95 % exact Poisson intervals), at the threshold chosen for "
        f"{first.budget:g} false alarm(s) per hour on the training folds' out-of-fold "
        f"scores, and at the default {DEFAULT_THRESHOLD:g}. A detection is the best word "
        "reaching the threshold; a hit needs it to be the clip's word.",
        "",
        "| revision | threshold | miss rate | false alarms | at "
        f"{DEFAULT_THRESHOLD:g}: miss | at {DEFAULT_THRESHOLD:g}: false alarms |",
        "|---|---:|---:|---|---:|---|",
    ]
    for rev, spot in section.spotted:
        at, default = spot.at_budget, spot.at_default
        lines.append(
            f"| {names[rev.spec]} | {spot.threshold:.3f} ({spot.threshold_from}) | "
            f"{_rate(at.miss_rate)} | {rate_text(at)} | "
            f"{_rate(default.miss_rate)} | {rate_text(default)} |"
        )
    lines.append("")
    if section.det_plot:
        lines += [f"![DET curve]({section.det_plot})", ""]
    for rev, spot in section.spotted:
        lines += [
            f"DET curve of {names[rev.spec]} (test split, threshold read off the test scores "
            "at each budget):",
            "",
            "| false alarms / h (at most) | miss rate | threshold |",
            "|---:|---:|---:|",
        ]
        for row in spot.det_text:
            lines.append(
                f"| {row.false_alarms_per_hour:g} | {_rate(row.miss_rate)} | {row.threshold:.3f} |"
            )
        lines.append("")
    return lines


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


@section_lines.register
def _tracker_task(section: TrackerTask) -> list[str]:
    task = section.task
    assert task.task_id is not None
    name = escape_md(task.task_id)
    link = f"[{name}]({md_url(task.web_url)})" if task.web_url else name
    return [f"ClearML task `validation`: {link} ({escape_md(task.mode)}).", ""]


def open_lines(origin: Origin) -> list[str]:
    """How to open a revision: ClearML link or session, git commit, workspace folder."""
    lines = []
    if origin.registry:
        lines.append(f"- registry version **{escape_md(origin.registry)}**")
    if origin.commit:
        short = origin.commit[:12]
        lines.append(
            f"- git commit `{short}` ({escape_md(origin.rev)}): {escape_md(origin.subject or '')}"
        )
        lines.append(f"  (`git show {short}`, models: `dvc get . data/models --rev {short}`)")
    if origin.clearml_task:
        task = escape_md(origin.clearml_task)
        if origin.web_url:
            lines.append(f"- ClearML task {task}: [open in ClearML]({md_url(origin.web_url)})")
        elif origin.session:
            lines.append(
                f"- ClearML task {task}, offline session {escape_md(origin.session, 400)} "
                "(`kwsops clearml import` uploads it)"
            )
        else:
            lines.append(f"- ClearML task {task}")
    if origin.path:
        lines.append(f"- workspace folder {escape_md(origin.path, 400)}")
    return lines


def _figures_lines(rev: RevisionResult) -> list[str]:
    folds = ", ".join(pct(a) for a in rev.accuracy.per_fold or [])
    lines = [
        f"- accuracy {with_ci(rev.accuracy)}; per fold: {folds}",
        f"- macro F1 {with_ci(rev.macro_f1)}",
        f"- fold ensemble accuracy {with_ci(rev.ensemble_accuracy)}",
    ]
    if rev.features_recomputed:
        lines.append(
            "- features recomputed from the test clips in data/output with its own settings"
        )
    paired = rev.paired
    if paired:
        lines.append(
            f"- paired test against the best ({escape_md(display_name(paired.against))}): "
            f"{escape_md(paired.method)}, only the best right on {paired.b} clips, "
            f"only this one on {paired.c}: {p_text(paired)}"
        )
    else:
        lines.append("- the best revision: the others are tested against it")
    return lines


@section_lines.register
def _revision(section: RevisionDetail) -> list[str]:
    rev = section.rev
    name = escape_md(display_name(rev.spec))
    lines = [f"## {rev.rank}. {name}", ""]
    if rev.curves_plot:
        lines += [f"![training curves of {name}]({rev.curves_plot})", ""]
    if rev.requested and rev.requested != rev.spec:
        lines.append(f"- requested as {escape_md(rev.requested)}")
    lines += open_lines(rev.origin) + _figures_lines(rev)
    lines += ["", "### Params", ""]
    params = [[escape_md(k), escape_md(v)] for k, v in sorted(rev.params.items())]
    lines += _table(["param", "value"], params)
    lines += ["### Per class", ""]
    per_class = [
        [escape_md(c.label, 60), pct(c.precision), pct(c.recall), pct(c.f1), str(c.support)]
        for c in rev.per_class
    ]
    lines += _table(["label", "precision %", "recall %", "F1 %", "clips"], per_class, "lrrrr")
    lines += _first_rows(
        section.speakers,
        "### Per speaker (test split, worst first)",
        "Speakers unknown: no test clip's file name names its speaker.",
        ["speaker", "clips", "accuracy %", "ensemble %"],
        "lrrr",
        lambda r: [
            escape_md(r.speaker, 60),
            str(r.clips),
            pct(r.accuracy),
            pct(r.ensemble_accuracy),
        ],
        "speakers",
    )
    lines += _first_rows(
        section.misclassified,
        "### Misclassified test clips (fold ensemble, most confident first)",
        "None: the fold ensemble classifies every test clip correctly.",
        ["file (in data/input)", "true", "predicted", "probability %"],
        "lllr",
        lambda r: [
            escape_md(r.source, 120),
            escape_md(r.true, 40),
            escape_md(r.predicted, 40),
            pct(r.probability),
        ],
        "misclassified clips",
    )
    lines += [
        "### Confusion matrix",
        "",
        "Rows: true label; mean over folds, each row sums to 100 %.",
        "",
    ]
    if rev.plot:
        lines += [f"![confusion matrix of {name}]({rev.plot})", ""]
    labels = [escape_md(label, 40) for label in section.labels]
    rows = [
        [f"**{label}**", *[pct(v) for v in row]]
        for label, row in zip(labels, rev.confusion, strict=True)
    ]
    return lines + _table(["true \\\\ predicted (%)", *labels], rows, "l" + "r" * len(labels))


def _first_rows(
    rows: FirstRows | None, title: str, empty: str, header: list[str], align: str, cells, what: str
) -> list[str]:
    if rows is None:
        return []
    if not rows.total:
        return [title, "", empty, ""]
    table = _table(header, [cells(row) for row in rows.rows], align)
    more = [f"{len(rows.rows)} of {rows.total} {what}; all of them are in {JSON_NAME}.", ""]
    return [title, "", *table, *(more if rows.more else [])]
