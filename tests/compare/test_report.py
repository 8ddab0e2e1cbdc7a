"""The comparison report: Markdown that no label can break, the rich terminal view, the plots."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

from kwsops.cli.main import main
from kwsops.compare.markdown import render_html
from kwsops.compare.model import Comparison, ReportError, load_comparison
from kwsops.compare.plots import plot_accuracy, plot_confusion, plot_curves
from kwsops.compare.terminal import comparison_view, print_report
from kwsops.compare.wording import short_names
from kwsops.text import clean_text, escape_md
from tests.helpers.comparison import (
    HOSTILE,
    LABELS,
    make_comparison,
    markdown_of,
    write_report,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture
def comparison() -> dict:
    """As comparison_versions.json holds it (the tests edit it, then read it into the model)."""
    return make_comparison()


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
    md = markdown_of(comparison)
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
    md = markdown_of(comparison)
    headings = re.findall(r"^#+ .*$", md, flags=re.M)
    assert headings[:4] == ["# Comparison of model revisions", "## Summary",
                            "## Parameters that differ", "## 1. git:aaaaaaaaaa:batch\\_16"]  # fmt: skip
    summary = md.split("## Summary\n\n")[1].split("\n\n")[0].splitlines()
    assert "learning\\_rate" not in summary[0]  # differing params have their own table
    assert "| aaaaaaa b16 |" in summary[2] and "| ws b16 |" in summary[3]
    assert "90.0 % (80.0–95.0)" in summary[2] and "p = 0.625" in summary[3]
    assert "**ws b16** = workspace:batch\\_16" in md  # the legend names each in full
    diff = md.split("## Parameters that differ\n\n")[1].split("\n\n")[0].splitlines()
    assert diff[0] == "| param | aaaaaaa b16 | ws b16 |"
    assert diff[2] == "| learning\\_rate | 0.001 | 0.01 |" and len(diff) == 3
    assert "![confusion matrix of workspace:batch\\_16](plots/c2.png)" in md
    assert "Quality gate (accuracy ≥ 50.0 %): passed." in md
    assert md.count("### Per class") == 2 and md.count("### Confusion matrix") == 2
    assert "features recomputed" in md and "21 held-out test clips of 3 labels" in md


def render(data: dict, **options) -> str:
    out = io.StringIO()
    Console(file=out, width=80, **options).print(comparison_view(Comparison.from_dict(data)))
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
    assert main(["-C", str(tmp_path), "report"]) == 4  # not a workspace: said so, in one line
    err = capsys.readouterr().err
    assert "is not a kwsops workspace" in err and len(err.strip().splitlines()) == 1
    assert main(["-C", str(tmp_path / "nowhere"), "report"]) == 4
    assert "no such folder" in capsys.readouterr().err


def test_plots_are_written_with_hostile_labels(comparison, tmp_path):
    labels = [*LABELS[:2], "$\\frac{1}{0}$ " + HOSTILE]
    path = plot_confusion(
        comparison["revisions"][0]["confusion"], labels, "t $x", tmp_path / "c.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = plot_accuracy(Comparison.from_dict(comparison).revisions, tmp_path / "a.png")
    assert path.stat().st_size > 1000
    history = [[{"epoch": e, "val_acc": 0.1 * e, "val_loss": 2 - 0.1 * e} for e in (1, 2, 3)]] * 2
    path = plot_curves(history, HOSTILE, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_links_cannot_be_broken_out_of(comparison):
    rev = comparison["revisions"][1]
    rev["origin"] = {"clearml_task": "t1", "web_url": "http://srv/x) [evil](http://e) <b>"}
    md = markdown_of(comparison)
    tokens = MarkdownIt("commonmark").parseInline(md.split("ClearML task t1: ")[1].split("\n")[0])
    links = [c for c in tokens[0].children if c.type == "link_open"]
    assert len(links) == 1 and links[0].attrs["href"].startswith("http://srv/x%29%20%5Bevil%5D")


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (["workspace:batch_16", "workspace:batch_32"], ["ws b16", "ws b32"]),
        (["git:" + "a" * 40 + ":batch_16", "git:" + "b" * 40 + ":batch_16"],
         ["aaaaaaa b16", "bbbbbbb b16"]),
        # the same first 7 characters: the sha grows until they differ
        (["git:" + "c" * 8 + "1" * 32 + ":batch_16", "git:" + "c" * 8 + "2" * 32 + ":batch_16"],
         ["cccccccc11 b16", "cccccccc22 b16"]),
        (["clearml:offline-0123456789abcdef", "workspace:batch_64"], ["cml 0123456", "ws b64"]),
    ],
)  # fmt: skip
def test_short_names_tell_revisions_apart(specs, expected):
    names = short_names(specs)
    assert [names[spec] for spec in specs] == expected


def test_terminal_summary_uses_short_names_and_shows_the_param_diff(comparison):
    plain = render(comparison, color_system=None)
    summary = plain.split("Summary (best first)")[1].split("1. git:")[0]
    assert "aaaaaaa b16" in summary and "ws b16" in summary
    assert "ws b16 = workspace:batch_16" in summary  # the caption names each in full
    diff = plain.split("Parameters that differ")[1].splitlines()
    assert "learning_rate" in diff[4] and "0.001" in diff[4] and "0.01" in diff[4]


def test_piped_report_has_no_trailing_spaces_and_html_has_no_raw_html(comparison, tmp_path, capsys):
    md = write_report(comparison, tmp_path)
    assert main(["report", str(md)]) == 0
    out = capsys.readouterr().out
    assert out and not any(line != line.rstrip() for line in out.splitlines())
    page = render_html(md.read_text())
    assert "<table>" in page and "<img src=x" not in page and "<b>" not in page


def section(md: str, title: str) -> str:
    return md.split(title)[1].split("\n### ")[0]


def test_per_speaker_and_misclassified_clips_are_short_on_screen_and_whole_in_json(comparison):
    md = markdown_of(comparison)
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
    md = markdown_of(comparison)
    assert "21 held-out test clips of 3 labels, speakers unknown" in md
    assert "1 speaker" not in md and "0 speakers" not in md
    assert "Test split: clip by clip (test\\_size 0.1, seed 42), speakers unknown" in md
    assert "Speakers unknown: no test clip's file name names its speaker." in md
    assert "None: the fold ensemble classifies every test clip correctly." in md
    assert "speakers unknown" in render(comparison, color_system=None)
    comparison["test"].update(
        speakers=2, speakers_total=16, split={"kind": "official", "note": "sc/testing_list.txt"}
    )
    md = markdown_of(comparison)
    assert "of 3 labels from 2 of the 16 speakers in the data set" in md
    assert "Test split: the official one, the clips sc/testing\\_list.txt names." in md
    comparison["test"]["split"] = {"kind": "speaker", "test_size": 0.1, "seed": 42}
    assert "held-out speakers (test\\_size 0.1, seed 42)" in markdown_of(comparison)


def test_table_titles_stay_on_one_line(comparison):
    """The misclassified table is narrower than its title: the title wrapped at any width."""
    title = "misclassified test clips, most confident first (ensemble)"
    comparison = copy.deepcopy(comparison)
    for rev in comparison["revisions"]:  # short names: a table narrower than its title
        rev["misclassified"] = [
            {
                "source": "a.wav",
                "clip": "gun/a.wav",
                "speaker": "",
                "true": "gun",
                "predicted": "rock",
                "probability": 0.9,
                "p_true": 0.05,
            }
        ]
    for width in (80, 120, 200):
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(
            comparison_view(Comparison.from_dict(comparison))
        )
        assert title in [line.strip() for line in out.getvalue().splitlines()], width


def test_a_test_share_far_from_test_size_is_said_in_the_report(comparison):
    note = "test share 0.15 (12 of 80 clips), not 0.02: whole speakers are held out"
    comparison["test"]["split"] = {
        "kind": "speaker", "test_size": 0.02, "seed": 42, "share_note": note
    }  # fmt: skip
    assert f"never heard in training. The {escape_md(note)}." in markdown_of(comparison)
    assert "not 0.02: whole speakers are held out" in " ".join(render(comparison).split())


def test_a_comparison_main_wrote_reads_back_and_renders_as_it_did():
    """comparison_versions.{json,md} of a demo workspace, written by the dict-based report code
    (before the model): the JSON loads, writes back the same, and renders the same Markdown."""
    written = json.loads((DATA / "comparison_main.json").read_text(encoding="utf-8"))
    comparison = load_comparison(DATA / "comparison_main.md")
    assert comparison is not None and comparison.best.spec == written["best"]
    assert comparison.to_dict() == written
    assert markdown_of(written) == (DATA / "comparison_main.md").read_text(encoding="utf-8")
    spot = comparison.best.spotting
    assert spot is not None and spot.at_budget.interval == tuple(
        written["revisions"][0]["spotting"]["at_budget"]["interval"]
    )


def test_a_file_that_is_not_a_comparison_is_said_in_one_line(comparison, tmp_path):
    del comparison["revisions"][0]["accuracy"]
    path = tmp_path / "comparison_versions.json"
    path.write_text(json.dumps(comparison))
    with pytest.raises(ReportError) as caught:
        load_comparison(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "revisions.0.accuracy" in message and "run Validate again" in message
    path.write_text(json.dumps({**comparison, "revisions": []}))
    with pytest.raises(ReportError, match="compares no revision"):
        load_comparison(path)
