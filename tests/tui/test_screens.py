"""Console Report, Data, Runs and Curves screens."""

from __future__ import annotations

import os
from pathlib import Path

from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey
from textual_plotext import PlotextPlot

from kwsops.audio.manifest import ManifestRow, write_manifest
from kwsops.tui.dialogs.compare import CompareDialog
from kwsops.tui.screens.comparison import ReportViewer
from kwsops.tui.screens.runs import FILTERS, RunsScreen
from tests.helpers.tui import SIZE, cells, make_app, run_async, wait_for
from tests.helpers.tui_workspace import NOW, RUN_ACTIVE, RUN_FAILED, make_workspace


class TestReport:
    @run_async
    async def test_renders_with_contents_and_reloads(self, ws: Path) -> None:
        report = ws / "reports" / "comparison_versions.md"
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            viewer = app.screen.query_one(ReportViewer)
            await wait_for(pilot, lambda: app.screen.loaded_text is not None)
            # 120 columns: room for the ten-column summary first, the contents on `t`
            assert viewer.display and not viewer.show_table_of_contents
            assert len(viewer.query("MarkdownTable")) == 3  # summary + two confusion matrices
            toc = viewer.table_of_contents.table_of_contents
            assert [t[1] for t in toc][:2] == ["Comparison of model revisions", "Summary"]
            report.write_text(report.read_text() + "\n## workspace:batch_64\n\nnew\n")
            os.utime(report, (NOW + 60, NOW + 60))
            await wait_for(pilot, lambda: "batch_64" in (app.screen.loaded_text or ""), 5)
            await pilot.press("t")
            assert viewer.show_table_of_contents
            await pilot.resize_terminal(200, 50)  # wide: the contents open by themselves
            await pilot.press("t")
            assert not viewer.show_table_of_contents
            await pilot.resize_terminal(180, 50)
            await wait_for(pilot, lambda: viewer.show_table_of_contents, 5)

    @run_async
    async def test_missing_report_says_how_to_make_one(self, tmp_path: Path) -> None:
        root = make_workspace(tmp_path / "ws", report=False)
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await wait_for(pilot, lambda: app.screen.query_one("#report-empty"))
            empty = app.screen.query_one("#report-empty")
            await wait_for(pilot, lambda: "No comparison report yet" in empty.source)
            assert app.screen.query_one("#report-switcher").current == "report-empty"
            (root / "reports" / "comparison_versions.md").write_text("# Fresh\n\nhello\n")
            await wait_for(pilot, lambda: app.screen.loaded_text is not None, 5)

    @run_async
    async def test_a_runs_own_report(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("4", "down", "down", "m")
            await wait_for(pilot, lambda: "All stages done" in (app.screen.loaded_text or ""))
            await pilot.press("b")
            await wait_for(pilot, lambda: "Comparison" in (app.screen.loaded_text or ""))


class TestData:
    @run_async
    async def test_labels_and_rejections(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.screen.summary is not None)
            labels = app.screen.query_one("#labels", DataTable)
            rows = {cells(labels, i)[0]: cells(labels, i) for i in range(labels.row_count)}
            assert rows["gun"][1:4] == ["6", "1", "3"]  # speakers of the kept clips
            assert rows["(no label)"][1:3] == ["0", "1"]
            assert rows["catch"][4] == "0.90 / 1.18 / 1.45"
            rejected = app.screen.query_one("#rejected", DataTable)
            reasons = [cells(rejected, i)[2] for i in range(rejected.row_count)]
            assert "too long: 3.41 s > 2.60 s" in reasons and "no label folder" in reasons

    @run_async
    async def test_speakers_unknown_noise_lists_and_merged_spellings(self, tmp_path: Path) -> None:
        root = make_workspace(tmp_path / "ws", manifest=False)
        out = root / "data" / "output"
        out.mkdir(parents=True)
        rows = [
            ManifestRow(
                "Rock/a.wav",
                "Rock",
                None,
                "kept",
                output="Rock/a.wav",
                duration_in=1.0,
                duration_out=0.5,
                folder="Rock",
            ),
            ManifestRow(
                "Whatsapp/ROCK/[b]x.ogg",
                "Rock",
                None,
                "kept",
                output="Rock/b.wav",
                duration_in=1.0,
                duration_out=0.5,
                folder="Whatsapp/ROCK",
            ),
            ManifestRow("gun/c.wav", "gun", None, "kept", output="gun/c.wav", folder="gun"),
            ManifestRow(
                "_background_noise_/tap.wav",
                None,
                None,
                "noise",
                output="_noise/tap.wav",
                duration_in=61.0,
                duration_out=61.0,
            ),
            ManifestRow("testing_list.txt", None, None, "list"),
        ]
        write_manifest(rows, out / "manifest.csv")
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.screen.summary is not None)
            title = str(app.screen.query_one("#data-title").render())
            assert "3 kept · 0 rejected · 2 labels · speakers unknown" in title
            assert "1 noise recordings (61 s)" in title and "official split lists" in title
            assert "merged: ROCK → Rock" in title
            # no _unknown_ clip: the screen says once what that model will do
            assert title.count("the model will call any speech one of the words") == 1
            labels = app.screen.query_one("#labels", DataTable)
            table = {cells(labels, i)[0]: cells(labels, i) for i in range(labels.row_count)}
            assert table["Rock"][1:4] == ["2", "0", "unknown"]
            assert table["(noise)"][1:4] == ["1", "0", ""]
            assert table["(noise)"][4] == "61.0 / 61.0 / 61.0"

    @run_async
    async def test_speech_commands_sized_counts_fit_their_columns_at_80(
        self, tmp_path: Path
    ) -> None:
        """12 345 clips of 1 234 speakers: no count is cut to fit a narrow column."""
        root = make_workspace(tmp_path / "ws", manifest=False)
        out = root / "data" / "output"
        out.mkdir(parents=True)
        rows = [
            ManifestRow(f"catch/s{n % 1234}_nohash_{n}.wav", "catch", f"s{n % 1234}", "kept",
                        output=f"catch/{n}.wav", duration_in=1.0, duration_out=1.0)
            for n in range(12_345)
        ]  # fmt: skip
        write_manifest(rows, out / "manifest.csv")
        app = make_app(root)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.screen.summary is not None)
            labels = app.screen.query_one("#labels", DataTable)
            assert cells(labels, 0)[1:4] == ["12345", "0", "1234"]
            for key, text in zip(
                ("kept", "rejected", "speakers"), cells(labels, 0)[1:4], strict=True
            ):
                assert len(text) <= labels.columns[ColumnKey(key)].width, (key, text)

    @run_async
    async def test_missing_and_broken_manifest(self, tmp_path: Path) -> None:
        root = make_workspace(tmp_path / "ws", manifest=False)
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await wait_for(
                pilot,
                lambda: "No manifest yet" in str(app.screen.query_one("#data-title").render()),
            )
            manifest = root / "data" / "output" / "manifest.csv"
            manifest.parent.mkdir(parents=True)
            manifest.write_text("this,is\nnot,a manifest\n")
            await pilot.press("r")
            await wait_for(
                pilot, lambda: any("not a kwsops manifest" in n.message for n in app._notifications)
            )
            assert app.is_running


class TestFigures:
    @run_async
    async def test_the_reports_figures_in_text_and_the_browser_key(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            await wait_for(pilot, lambda: app.screen.loaded_text is not None)
            await pilot.press("v")
            switcher = app.screen.query_one("#report-switcher")
            await wait_for(pilot, lambda: switcher.current == "report-figures")
            body = app.screen.query_one("#figures-body")
            shown = "\n".join(strip.text for strip in body.render_lines(Region(0, 0, 116, 200)))
            assert "Parameters that differ" in shown and "confusion %" in shown
            assert "aaaaaaa b16 = git:aaaaaaaaaa:batch_16" in shown
            assert "\x1b" not in shown and "ro|ck*_`[x](y)<b>#" in shown  # the label as data
            grid = [s for s in body.render_lines(Region(0, 0, 116, 200)) if "1 catch" in s.text]
            assert (
                len({seg.style.bgcolor for seg in grid[0] if seg.style and seg.style.bgcolor}) > 1
            )
            await pilot.press("v")
            assert switcher.current == "report-viewer"
            await pilot.press("w")  # no browser in a test run: it says where the page is
            await wait_for(pilot, lambda: any("comparison_versions.html" in n.message
                                              for n in app._notifications))  # fmt: skip


class TestRuns:
    @run_async
    async def test_filter_sort_mark_and_compare(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("4")
            table = app.screen.query_one("#runs", DataTable)
            await wait_for(pilot, lambda: table.row_count == 3)
            await pilot.press("f", "f", "f")  # all -> running -> ok -> failed
            await wait_for(pilot, lambda: table.row_count == 1)
            assert cells(table, 0)[0] == RUN_FAILED and app.screen.status_filter == "failed"
            detail = str(app.screen.query_one("#run-detail").render())
            assert "MakeSpectrograms: RuntimeError: spectrogram folder is empty" in detail
            for _ in range(len(FILTERS) - 3):
                await pilot.press("f")
            await wait_for(pilot, lambda: table.row_count == 3)
            await pilot.press("o", "o", "o")  # run -> started -> kind -> status
            assert app.screen.sort_column == "status"
            assert [cells(table, i)[2] for i in range(3)] == ["✘ failed", "✔ ok", "▶ running"]
            await pilot.press("O")
            assert cells(table, 0)[2] == "▶ running"
            await pilot.press("home", "space", "down", "d")  # mark, move, compare
            await wait_for(pilot, lambda: isinstance(app.screen, CompareDialog))
            assert ["result outcome", "running", "ok"] in app.screen.rows  # marked vs selected
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)
            # a run marked, then a filter that shows none: d says so, nothing breaks
            empty = next(i for i, name in enumerate(FILTERS) if name == "killed")
            while app.screen.status_filter != FILTERS[empty]:
                await pilot.press("f")
            await wait_for(pilot, lambda: table.row_count == 0)
            assert app.screen.marked is not None and app.screen.selected is None
            await pilot.press("d")
            await wait_for(pilot, lambda: any("No run shown" in str(n.message)
                                              for n in app._notifications))  # fmt: skip
            assert isinstance(app.screen, RunsScreen) and app.return_code is None


class TestCurves:
    @run_async
    async def test_fold_curves_of_the_shown_run(self, ws: Path) -> None:
        app = make_app(ws)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("6")
            screen = app.screen
            await wait_for(pilot, lambda: screen.curves)
            assert [label for label, _ in screen.shown_curves()] == ["b16 f0", "b16 f1", "b32 f0"]
            assert "run " + RUN_ACTIVE in str(screen.query_one("#curves-title").render())
            plot = screen.query_one("#accuracy-plot", PlotextPlot)
            drawn = plot.plt.build()
            assert "b16 f0" in drawn and "validation accuracy" in drawn
            await pilot.press("b")  # one batch size at a time
            assert {label.split()[0] for label, _ in screen.shown_curves()} == {"b16"}

    @run_async
    async def test_a_run_that_trained_nothing_shows_the_comparisons_curves(
        self, tmp_path: Path
    ) -> None:
        root = make_workspace(tmp_path / "ws", active=False)
        for run in (root / "reports" / "runs").iterdir():  # runs without training events
            events = run / "events.jsonl"
            events.write_text("\n".join(line for line in events.read_text().splitlines()
                                        if "TrainFold" not in line) + "\n")  # fmt: skip
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("6")
            await wait_for(pilot, lambda: app.screen.curves)
            labels = [label for label, _ in app.screen.shown_curves()]
            assert labels == ["aaaaaaa b16 f0", "aaaaaaa b16 f1", "ws b16 f0", "ws b16 f1"]
            assert "comparison report" in str(app.screen.query_one("#curves-title").render())


class TestDataVerify:
    @run_async
    async def test_v_verifies_the_versioned_data_and_names_a_bad_file(self, tmp_path: Path) -> None:
        from kwsops.versioning.dvc import version_stage
        from kwsops.versioning.init import init_workspace

        root = init_workspace(tmp_path / "ws").root
        out = root / "data" / "output" / "yes"
        out.mkdir(parents=True)
        for i in range(3):
            (out / f"{i}.wav").write_bytes(os.urandom(2000))
        version_stage(root, "data/output")
        app = make_app(root)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5", "v")
            line = app.screen.query_one("#data-verify")
            await wait_for(pilot, lambda: "verified: 3 versioned files" in str(line.render()), 30)
            with open(out / "1.wav", "r+b") as handle:  # through the hard link: the cache too
                handle.seek(100)
                handle.write(bytes(400))
            await pilot.press("v")
            await wait_for(pilot, lambda: "1 bad" in str(line.render()), 30)
            assert "data/output/yes/1.wav" in str(line.render())
            assert "kwsops verify --repair" in str(line.render())
