"""`kwsops report` and `kwsops tui` refuse what they cannot show with one line (exit 4), as
every other command does: a file that is no comparison report, a missing file, no workspace."""

from __future__ import annotations

import re
from pathlib import Path

from kwsops import exitcodes
from tests.helpers.cli import run_cli
from tests.helpers.tui_workspace import REPORT


def test_report_refuses_a_text_file_that_is_no_comparison(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: milk, eggs\n")
    result = run_cli(tmp_path, "report", str(notes), check=False)
    assert result.returncode == exitcodes.BAD_CONFIG
    assert "not a comparison report" in result.stderr and "notes.txt" in result.stderr
    assert "milk" not in result.stdout
    readme = tmp_path / "README.md"  # Markdown, but not one Validate wrote
    readme.write_text("# My project\n\nsome notes\n")
    result = run_cli(tmp_path, "report", str(readme), check=False)
    assert result.returncode == exitcodes.BAD_CONFIG and "not a comparison report" in result.stderr


def test_report_names_a_missing_file_as_missing(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "report", str(tmp_path / "missing.md"), check=False)
    assert result.returncode == exitcodes.BAD_CONFIG
    assert "missing.md: no such file" in result.stderr
    assert "no comparison report yet" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_prints_a_comparison_markdown_without_its_json(tmp_path: Path) -> None:
    report = tmp_path / "comparison_versions.md"
    report.write_text(REPORT)
    out = run_cli(tmp_path, "report", str(report)).stdout
    assert "Comparison of model revisions" in out and "workspace:batch_16" in out


def test_tui_outside_a_workspace_says_so_on_one_line(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "tui", check=False, timeout=60)
    assert result.returncode == exitcodes.BAD_CONFIG
    assert "not a kwsops workspace" in result.stderr and "kwsops init" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "\x1b[?1049h" not in result.stdout  # the console never took over the screen


def test_runs_on_a_narrow_terminal_shows_run_ids_whole(tmp_path: Path) -> None:
    from tests.helpers.tui_workspace import RUN_ACTIVE, RUN_FAILED, RUN_OK, make_workspace

    ws = make_workspace(tmp_path / "ws")
    for columns in ("80", "120"):
        terminal = {"TTY_COMPATIBLE": "1", "COLUMNS": columns}  # rich draws as on a terminal
        out = re.sub(r"\x1b\[[0-9;]*m", "", run_cli(ws, "runs", env=terminal).stdout)
        assert "┃ Run" in out, out  # drawn as a terminal table
        for run_id in (RUN_ACTIVE, RUN_FAILED, RUN_OK):
            assert run_id in out, f"{columns} columns:\n{out}"
        assert max(len(line) for line in out.splitlines()) <= int(columns)


def test_runs_show_on_a_narrow_terminal_keeps_task_names_whole(tmp_path: Path) -> None:
    from tests.helpers.tui_workspace import RUN_OK, make_workspace

    ws = make_workspace(tmp_path / "ws", active=False)
    terminal = {"TTY_COMPATIBLE": "1", "COLUMNS": "80"}
    out = re.sub(r"\x1b\[[0-9;]*m", "", run_cli(ws, "runs", "show", RUN_OK, env=terminal).stdout)
    assert "┃ task" in out, out
    for name in ("VersionSpectrograms", "MakeSpectrograms", "TrainFold batch 16 fold 1"):
        assert name in out, out
    assert "best workspace:batch_16" in out.replace("\n", " ")  # the detail: folded, not cut
