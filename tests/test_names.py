"""Names are data, never markup: a catalogue of hostile file and folder names through the real
pipeline (`kwsops run`), the console under Textual's pilot, the reports (Markdown, HTML), the
manifest CSV, luigid's status message and git commit messages."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import luigi
import pytest
from markdown_it import MarkdownIt
from textual.widgets import DataTable

from kwsops.audio.manifest import read_manifest
from kwsops.text import (
    clean_text,
    commit_message,
    csv_cell,
    csv_value,
    escape_markup,
    escape_md,
    html_text,
    plot_text,
    rich_text,
    status_message,
)
from kwsops.tui.readers.luigid import LuigidSource
from kwsops.workspace import Workspace
from tasks.base import KwsTask
from tests.helpers.cli import run_cli
from tests.helpers.files import git
from tests.helpers.tui import SIZE, cells, make_app, run_async, wait_for

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]  # pipeline runs: scheduled first
LABEL = "[on red]lab"
# file names (a "/" makes a folder: rock/spk01__zz[/]a.wav is the crashing name)
HOSTILE = [
    "spk01__[bold red]x",
    "spk02__\x1b[2Jclear",
    "spk03__<img src=x onerror=alert(1)>",
    "spk04__=cmd|' /C calc'!A0",
    "spk01__+SUM(1)",
    "spk02__@x-[link=file:e]y",
    "spk03__-1",
    "spk04__'quoted",
]
CATALOGUE = [*HOSTILE, LABEL, "zz[/]a.wav", "\x1b]0;owned\x07title", "bidi\u202egnp.wav",
             "$\\frac{1}{0}$.wav"]  # fmt: skip
FORMULA = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("name", CATALOGUE)
def test_each_medium_has_one_helper_that_keeps_a_name_data(name: str) -> None:
    shown = clean_text(name)
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert rich_text(name).plain == shown  # a Text: never parsed as markup
    from rich.text import Text

    assert Text.from_markup(escape_markup(name)).plain == shown
    rendered = MarkdownIt("commonmark", {"html": True}).render(escape_md(name))
    assert "<img" not in rendered and "<b>" not in rendered
    assert "<" not in html_text(name) and "<" not in status_message(name)
    assert csv_value(csv_cell(name)) == name and not csv_cell(name).startswith(FORMULA)
    assert "$" not in plot_text(name).replace("\\$", "")  # never starts matplotlib mathtext
    one = commit_message(f"models {name}\n\nSigned-off-by: x")
    assert "\n" not in one and "\x1b" not in one


def hostile_input(ws: Workspace, source: Path) -> dict[str, str]:
    """The demo recordings, plus catch's clips again under hostile names in a hostile label
    folder, one in a folder that makes `zz[/]a`, and two unreadable ones: name -> source."""
    shutil.copytree(source, ws.input_dir, dirs_exist_ok=True)
    clips = sorted((source / "catch").iterdir())
    folder = ws.input_dir / LABEL
    folder.mkdir()
    names = {}
    for name, clip in zip(HOSTILE, clips, strict=False):
        target = folder / f"{name}{clip.suffix}"  # a "/" in a name makes a folder
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, target)
        names[name] = f"{LABEL}/{name}{clip.suffix}"
    (ws.input_dir / "rock" / "spk01__zz[").mkdir()
    shutil.copy(clips[0], ws.input_dir / "rock" / "spk01__zz[" / f"]a{clips[0].suffix}")
    names["zz[/]a"] = f"rock/spk01__zz[/]a{clips[0].suffix}"
    for bad in ("=cmd|' \x1b[2J calc'!A0.wav", "[on red]<b>broken.wav"):
        (ws.input_dir / "rock" / bad).write_bytes(b"not audio at all")
        names[bad] = f"rock/{bad}"
    return names


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, demo_source: Path, new_workspace) -> tuple:
    ws = new_workspace(tmp_path_factory.mktemp("names") / "ws")
    names = hostile_input(ws, demo_source)
    run_cli(ws, "run", "--epochs", "1", "--folds", "2", "--batch-sizes", "16", "--quiet")
    return ws, names


def test_the_pipeline_keeps_names_as_data(hostile: tuple) -> None:
    ws, names = hostile
    manifest = ws.output_dir / "manifest.csv"
    with open(manifest, newline="", encoding="utf-8") as handle:
        raw = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in raw if cell.startswith(FORMULA)]  # no formula cell
    rows = {row.source: row for row in read_manifest(manifest)}
    assert set(names.values()) <= set(rows)  # every name reads back exactly
    assert rows[names["zz[/]a"]].kept and rows[names[HOSTILE[0]]].label == LABEL
    assert not rows[names["[on red]<b>broken.wav"]].kept

    data = json.loads(ws.comparison_report.with_suffix(".json").read_text())
    assert LABEL in data["test"]["labels"]
    for page in (ws.comparison_report, ws.comparison_report.with_suffix(".html")):
        text = page.read_text()
        html = (
            MarkdownIt("commonmark", {"html": True}).render(text) if page.suffix == ".md" else text
        )
        assert "\x1b" not in text, page
        assert "<b>" not in html and "<img src=x" not in html and "[on red]lab" in html, page
    run = sorted(ws.runs_dir.iterdir())[-1]
    for page in (run / "report.md", run / "report.html"):
        assert "\x1b" not in page.read_text()
    for line in git(ws.root, "log", "--format=%B").splitlines():
        assert clean_text(line) == line  # commit messages: printable, one line each


def test_the_cli_prints_names_as_data(hostile: tuple) -> None:
    ws, _ = hostile
    report = run_cli(ws, "report").stdout
    assert LABEL in report and "\x1b" not in report
    shown = run_cli(ws, "runs", "show", "last").stdout
    assert "\x1b" not in shown and "Preprocess" in shown


@run_async
async def test_the_console_shows_names_as_data(hostile: tuple, tmp_path: Path) -> None:
    ws, names = hostile
    root = tmp_path / "ws"
    shutil.copytree(ws.root, root, symlinks=True)
    real = sorted((root / "reports" / "runs").iterdir())[-1]
    # the same run, caught while Preprocess reports the file it is on (what it emits)
    running = real.with_name("20990101-000000-live")
    running.mkdir()
    lines = (real / "events.jsonl").read_text().splitlines()
    upto = max(i for i, line in enumerate(lines) if '"Preprocess"' in line and "progress" in line)
    progress = json.loads(lines[upto])
    progress.update(detail=names["zz[/]a"], done=3)
    (running / "events.jsonl").write_text("\n".join([*lines[:upto], json.dumps(progress)]) + "\n")
    (running / "params.json").write_text((real / "params.json").read_text())
    status = {"status": "running", "pid": os.getpid(), "started": progress["ts"] - 5}
    (running / "status.json").write_text(json.dumps(status))
    app = make_app(root)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.active)
        stages = app.screen.query_one("#stages", DataTable)
        details = {
            cells(stages, i)[0].strip(): cells(stages, i)[4] for i in range(stages.row_count)
        }
        assert details["Preprocess"] == names["zz[/]a"]
        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen.summary is not None)
        labels = app.screen.query_one("#labels", DataTable)
        assert LABEL in [cells(labels, i)[0] for i in range(labels.row_count)]
        rejected = app.screen.query_one("#rejected", DataTable)
        sources = [cells(rejected, i)[0] for i in range(rejected.row_count)]
        assert clean_text(names["=cmd|' \x1b[2J calc'!A0.wav"], 400) in sources
        assert names["[on red]<b>broken.wav"] in sources
        for key in ("3", "v", "4", "6", "1"):
            await pilot.press(key)
            await pilot.pause(0.3)
        assert app.is_running and not app._exception  # nothing was parsed as markup


class Progress(KwsTask):
    """A task whose progress detail is a file name, as Preprocess reports the file it is on."""

    detail = luigi.Parameter()
    folder = luigi.Parameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(self.folder) / "done"))

    def run(self) -> None:
        self.progress(1, 2, str(self.detail))
        with self.output().open("w") as handle:
            handle.write("ok")


def test_luigid_status_messages_are_escaped_for_its_html(luigid, tmp_path: Path) -> None:
    detail = f"{LABEL}/{HOSTILE[2]}.wav"
    task = Progress(detail=detail, folder=str(tmp_path))
    assert luigi.build([task], scheduler_host="127.0.0.1", scheduler_port=luigid.port,
                       workers=1, local_scheduler=False)  # fmt: skip
    (shown,) = [t for t in LuigidSource("127.0.0.1", luigid.port).tasks() if t.family == "Progress"]
    assert "<img" not in shown.detail and "&lt;img src=x onerror=alert(1)&gt;" in shown.detail
