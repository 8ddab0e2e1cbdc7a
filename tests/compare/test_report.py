"""The comparison report: Markdown that no label can break, the rich terminal view, the plots."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from kwsops.cli.main import main
from kwsops.compare.markdown import plot_accuracy, plot_confusion, render_markdown
from kwsops.compare.terminal import ReportError, comparison_view, print_report
from kwsops.text import clean_text, escape_md

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
        "per_speaker": [{"speaker": f"spk{n:02d}" if n else HOSTILE, "clips": 4,
                         "accuracy": 0.5 + 0.04 * n, "ensemble_accuracy": 0.55 + 0.04 * n}
                        for n in range(12)],
        "misclassified": [{"source": f"{HOSTILE}/take_{n:02d}.wav", "clip": f"x/{n}.wav",
                           "speaker": "spk01", "true": HOSTILE, "predicted": "gun",
                           "probability": 0.99 - 0.05 * n, "p_true": 0.01} for n in range(11)],
    }  # fmt: skip


@pytest.fixture
def comparison() -> dict:
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


def test_clean_text_removes_escape_sequences_and_control_characters():
    assert clean_text("a\x1b[31mred\x1b[0m\x1b]0;title\x07 ok") == "ared ok"
    assert clean_text("one\ntwo\tthree\r") == "one two three "
    assert clean_text("bell\x07 rlo\u202e nul\x00") == "bell\ufffd rlo\ufffd nul\ufffd"
    assert clean_text("x" * 300, limit=10) == "x" * 9 + "…"


def test_escape_md_escapes_every_markdown_active_character():
    assert escape_md("a|b*c_d`e[f]g<h>i#j\\k~l&m$") == (r"a\|b\*c\_d\`e\[f\]g\<h\>i\#j\\k\~l\&m\$")
    assert escape_md("catch") == "catch" and escape_md("batch_16") == r"batch\_16"


def bare_pipes(line: str) -> int:
    """Table cell separators: pipes not escaped by a backslash."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count


def test_markdown_report_is_safe_with_a_hostile_label(comparison):
    md = render_markdown(comparison)
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", md)
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        rows = block.splitlines()
        assert {bare_pipes(row) for row in rows} == {bare_pipes(rows[0])}, block
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    assert not [t for t in tokens if t.type == "html_block"]
    inline = [c for t in tokens if t.type == "inline" for c in t.children or []]
    assert not [c for c in inline if c.type in ("html_inline", "link_open") and "x" in str(c)]
    cells = ["".join(c.content for c in t.children or []) for t in tokens if t.type == "inline"]
    shown = clean_text(HOSTILE, 60)
    assert any(shown in c for c in cells)  # the label reads as itself, nothing else
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<b>" not in rendered and "<img src=x" not in rendered


def test_markdown_report_layout(comparison):
    md = render_markdown(comparison)
    headings = re.findall(r"^#+ .*$", md, flags=re.M)
    assert headings[:3] == ["# Comparison of model revisions", "## Summary",
                            "## 1. git:aaaaaaaaaa:batch\\_16"]  # fmt: skip
    summary = md.split("## Summary\n\n")[1].split("\n\n")[0].splitlines()
    assert "learning\\_rate" in summary[0] and "batch\\_size" not in summary[0]
    assert "90.0 % (80.0–95.0)" in summary[2] and "p = 0.625" in summary[3]
    assert "![confusion matrix of workspace:batch\\_16](plots/c2.png)" in md
    assert "Quality gate (accuracy ≥ 50.0 %): passed." in md
    assert md.count("### Per class") == 2 and md.count("### Confusion matrix") == 2
    assert "features recomputed" in md and "21 held-out test clips of 3 labels" in md


def render(data: dict, **options) -> str:
    out = io.StringIO()
    Console(file=out, width=80, **options).print(comparison_view(data))
    return out.getvalue()


def test_terminal_view_fits_80_columns_and_injects_nothing(comparison):
    plain = render(comparison, color_system=None)
    assert "\x1b" not in plain and "\u202e" not in plain
    assert max(len(line) for line in plain.splitlines()) <= 80
    assert "ro|ck*_`[x](y)<b>#" in plain.replace("\n", "")  # the label, verbatim but inert
    coloured = render(comparison, force_terminal=True, color_system="truecolor")
    assert "\x1b[2J" not in coloured and "owned" not in coloured and "\x1b]0;" not in coloured
    assert "\x1b[" in coloured  # colour is on for a terminal


def per_class_numbers(md: str) -> list[list[str]]:
    rows = []
    for block in md.split("### Per class")[1:]:
        table = block.split("\n\n")[1].splitlines()[2:]
        rows += [row.split(" | ")[1:] for row in table]
    return [[cell.strip(" |") for cell in row] for row in rows]


def write_report(data: dict, folder: Path) -> Path:
    md = folder / "comparison_versions.md"
    md.write_text(render_markdown(data))
    md.with_suffix(".json").write_text(json.dumps(data))
    return md


def test_kwsops_report_prints_the_per_class_numbers(comparison, tmp_path, capsys):
    md = write_report(comparison, tmp_path)
    assert main(["report", str(md)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out  # piped: no colour
    numbers = per_class_numbers(md.read_text())
    assert len(numbers) == 2 * len(LABELS)
    flat = re.sub(r"\s+", " ", out)
    for row in numbers:
        assert " ".join(row) in flat, row
    assert main(["report", "--color", "always", str(md)]) == 0
    assert "\x1b[" in capsys.readouterr().out


def test_report_without_json_prints_the_markdown_and_missing_report_is_explained(
    comparison, tmp_path, capsys
):
    md = write_report(comparison, tmp_path)
    md.with_suffix(".json").unlink()
    md.write_text(md.read_text() + "\nbell \x1b[2J here\n")
    print_report(md, Console(file=io.StringIO(), width=80))
    assert main(["report", str(md)]) == 0
    out = capsys.readouterr().out
    assert "Comparison of model revisions" in out and "\x1b" not in out
    with pytest.raises(ReportError, match="no comparison report yet"):
        print_report(tmp_path / "none.md", Console(file=io.StringIO()))
    assert main(["-C", str(tmp_path), "report"]) != 0
    assert "kwsops validate" in capsys.readouterr().err


def test_plots_are_written_with_hostile_labels(comparison, tmp_path):
    labels = [*LABELS[:2], "$\\frac{1}{0}$ " + HOSTILE]
    path = plot_confusion(
        comparison["revisions"][0]["confusion"], labels, "t $x", tmp_path / "c.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = plot_accuracy(comparison["revisions"], tmp_path / "a.png")
    assert path.stat().st_size > 1000


def test_links_cannot_be_broken_out_of(comparison):
    rev = comparison["revisions"][1]
    rev["origin"] = {"clearml_task": "t1", "web_url": "http://srv/x) [evil](http://e) <b>"}
    md = render_markdown(comparison)
    tokens = MarkdownIt("commonmark").parseInline(md.split("ClearML task t1: ")[1].split("\n")[0])
    links = [c for c in tokens[0].children if c.type == "link_open"]
    assert len(links) == 1 and links[0].attrs["href"].startswith("http://srv/x%29%20%5Bevil%5D")


def section(md: str, title: str) -> str:
    return md.split(title)[1].split("\n### ")[0]


def test_per_speaker_and_misclassified_clips_are_short_on_screen_and_whole_in_json(comparison):
    md = render_markdown(comparison)
    speakers = section(md, "### Per speaker (test split, worst first)")
    rows = [line for line in speakers.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 10 and "10 of 12 speakers; all of them are in" in speakers
    assert rows[0].rstrip(" |").split(" | ")[2:4] == ["50.0", "55.0"]  # the worst first
    wrong = section(md, "### Misclassified test clips")
    rows = [line for line in wrong.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 10 and "10 of 11 misclassified clips" in wrong
    assert rows[0].endswith("| gun | 99.0 |") and "take\\_00.wav" in rows[0]
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<b>" not in rendered and "\x1b" not in md
    plain = render(comparison, color_system=None)
    assert "per speaker, worst first" in plain and "10 of 11 misclassified clips" in plain
    assert "take_00.wav" in plain.replace("\n", "") and "\x1b" not in plain


def test_unknown_speakers_and_each_split_kind_are_said_plainly(comparison):
    comparison["test"] = {
        "clips": 21,
        "labels": LABELS,
        "speakers": 0,
        "speakers_total": 0,
        "split": {"kind": "clip", "note": "speakers unknown", "test_size": 0.1, "seed": 42},
    }
    for rev in comparison["revisions"]:
        rev["per_speaker"], rev["misclassified"] = [], []
    md = render_markdown(comparison)
    assert "21 held-out test clips of 3 labels, speakers unknown" in md
    assert "1 speaker" not in md and "0 speakers" not in md
    assert "Test split: clip by clip (test\\_size 0.1, seed 42), speakers unknown" in md
    assert "Speakers unknown: no test clip's file name names its speaker." in md
    assert "None: the fold ensemble classifies every test clip correctly." in md
    assert "speakers unknown" in render(comparison, color_system=None)
    comparison["test"].update(
        speakers=2, speakers_total=16, split={"kind": "official", "note": "sc/testing_list.txt"}
    )
    md = render_markdown(comparison)
    assert "of 3 labels from 2 of the 16 speakers in the data set" in md
    assert "Test split: the official one, the clips sc/testing\\_list.txt names." in md
    comparison["test"]["split"] = {"kind": "speaker", "test_size": 0.1, "seed": 42}
    assert "held-out speakers (test\\_size 0.1, seed 42)" in render_markdown(comparison)
