"""The console at 80 columns: help and quit on screen, identifiers and counts whole, the
Detail column wrapped rather than cut; trained stages say the epochs they ran."""

from __future__ import annotations

import re
from pathlib import Path

from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import DataTable

from kwsops.runs.folder import RunPaths
from kwsops.tui.widgets.topbar import TopBar
from tests.helpers.tui import cells, make_app, run_async, wait_for
from tests.helpers.tui_workspace import NOW, event, make_workspace

NARROW = (80, 24)
RUN = "20231115-020000-dddd"
LONG_DETAIL = "kept 864, rejected 0; 6 labels, 16 speakers; 12 noise files in _background_noise_"


def shown(widget: Widget) -> str:
    """What the widget draws, all of it (scrolled parts included), as plain lines."""
    height = max(widget.virtual_size.height, widget.outer_size.height)
    width = widget.outer_size.width  # padding included
    return "\n".join(s.text for s in widget.render_lines(Region(0, 0, width, height)))


def write_parallel_run(root: Path) -> None:
    """A finished run: 864 files preprocessed, three folds trained at once for five minutes,
    each stopped early (planned 80 epochs)."""
    paths = RunPaths(root / "reports" / "runs" / RUN)
    paths.root.mkdir(parents=True)
    start = NOW - 600
    paths.params.write_text('{"epochs": 80, "folds": 3, "batch_sizes": [16]}')
    event(paths.events, start, "run_started", run_id=RUN, params={"epochs": 80}, origin="cli")
    event(paths.events, start, "task_started", task="Preprocess__1", family="Preprocess")
    event(
        paths.events,
        start + 5,
        "task_progress",
        task="Preprocess__1",
        family="Preprocess",
        done=864,
        total=864,
        detail="",
    )
    event(
        paths.events,
        start + 6,
        "task_done",
        task="Preprocess__1",
        family="Preprocess",
        duration=6.0,
        detail=LONG_DETAIL,
        summary={},
    )
    for fold, ran in enumerate((15, 14, 80)):
        task = f"TrainFold_16_{fold}"
        event(
            paths.events,
            start + 10,
            "task_started",
            task=task,
            family="TrainFold",
            params={"batch_size": "16", "fold": str(fold)},
        )
        event(
            paths.events,
            start + 300,
            "task_progress",
            task=task,
            family="TrainFold",
            done=80,
            total=80,
            detail=f"fold {fold} stopped early",
        )
        event(
            paths.events,
            start + 310,
            "task_done",
            task=task,
            family="TrainFold",
            duration=300.0,
            detail=f"batch 16 fold {fold}: val acc 0.800",
            summary={"epochs": ran, "epochs_planned": 80, "stopped_early": ran < 80},
        )
    event(paths.events, start + 320, "run_finished", status="ok", exit_code=0, duration=320.0)
    paths.status.write_text(
        f'{{"run_id": "{RUN}", "status": "ok", "started": {start}, "exit_code": 0,'
        f' "finished": {start + 320}, "duration": 320.0}}'
    )


def row_of(table: DataTable, label: str) -> list[str]:
    return next(
        cells(table, i) for i in range(table.row_count) if cells(table, i)[0].strip() == label
    )


class TestEightyColumns:
    @run_async
    async def test_help_and_quit_stay_on_the_top_line(self, tmp_path: Path) -> None:
        ws = make_workspace(tmp_path / "kws-operations-console", active=False)
        app = make_app(ws)
        async with app.run_test(size=NARROW) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            top = shown(app.screen.query_one(TopBar))
            assert "? help" in top and "q quit" in top, top
            assert "6 Curves" in top
            await pilot.resize_terminal(120, 40)
            await wait_for(
                pilot, lambda: "kws-operations-console" in shown(app.screen.query_one(TopBar))
            )

    @run_async
    async def test_dashboard_shows_counts_times_and_details_whole(self, tmp_path: Path) -> None:
        ws = make_workspace(tmp_path / "ws", active=False)
        write_parallel_run(ws)
        app = make_app(ws)
        async with app.run_test(size=NARROW) as pilot:
            await wait_for(pilot, lambda: app.snapshot and app.snapshot.focus.run_id == RUN)
            table = app.screen.query_one("#stages", DataTable)
            await wait_for(pilot, lambda: table.row_count > 4)
            text = " ".join(shown(table).split())
            assert "864/864 files" in text
            assert " ".join(LONG_DETAIL.split()) in text  # wrapped, never cut
            # three folds side by side for five minutes: five minutes, not fifteen
            assert row_of(table, "TrainFold ×3")[2] == "5m 00s"
            fold0 = row_of(table, "├ bs 16 · fold 0")
            assert fold0[3].startswith("15/80 ep") and "80/80" not in fold0[3]
            assert row_of(table, "└ bs 16 · fold 2")[3].startswith("80/80 ep")
            recent = app.screen.query_one("#recent", DataTable)
            assert RUN in shown(recent)

    @run_async
    async def test_data_screen_shows_noise_labels_and_rejected_files_whole(
        self, tmp_path: Path
    ) -> None:
        from kwsops.audio.manifest import ManifestRow, write_manifest

        root = make_workspace(tmp_path / "ws", manifest=False)
        out = root / "data" / "output"
        out.mkdir(parents=True)
        long_label = "turn_on_the_lights"
        deep = "Whatsapp/2024-family-recordings/grandma/" + "voice-note-0001.opus"
        rows = [
            ManifestRow(
                f"{long_label}/a.wav",
                long_label,
                None,
                "kept",
                output="x/a.wav",
                duration_in=1.0,
                duration_out=0.5,
                folder=long_label,
            ),
            *(
                ManifestRow(
                    f"_background_noise_/{name}.wav",
                    None,
                    None,
                    "noise",
                    output=f"_noise/{name}.wav",
                    duration_in=d,
                    duration_out=d,
                )
                for name, d in (("tap", 61.0), ("pink", 95.4), ("street", 3600.0))
            ),
            ManifestRow(
                deep,
                None,
                None,
                "rejected",
                reason="no label folder: put it in a"
                " folder named after its word, e.g. data/input/<word>/",
            ),
        ]
        write_manifest(rows, out / "manifest.csv")
        app = make_app(root)
        async with app.run_test(size=NARROW) as pilot:
            await pilot.press("5")
            await wait_for(pilot, lambda: app.screen.summary is not None)
            labels = app.screen.query_one("#labels", DataTable)
            await wait_for(pilot, lambda: labels.row_count >= 2)
            text = " ".join(shown(labels).split())
            assert "61.0 / 95.4 / 3600" in text
            label_column = "".join(line[:13].strip() for line in shown(labels).splitlines())
            assert long_label in label_column  # wrapped onto a second line, not cut
            assert "unknown" in text  # the speakers cell too
            rejected = app.screen.query_one("#rejected", DataTable)
            await wait_for(pilot, lambda: rejected.row_count == 1)
            lines = shown(rejected).splitlines()
            assert deep in "".join(line[:32].strip() for line in lines)  # the file, whole
            assert "data/input/<word>/" in "".join(line[32:].strip() for line in lines)

    @run_async
    async def test_run_report_and_contents_show_names_whole(self, tmp_path: Path) -> None:
        from textual.widgets import MarkdownViewer, Tree

        from kwsops.runs.pages import write_run_report
        from tests.helpers.tui_workspace import RUN_OK

        ws = make_workspace(tmp_path / "ws", active=False)
        run = RunPaths(ws / "reports" / "runs" / RUN_OK)
        run.report_md.unlink()
        write_run_report(run)  # as kwsops writes it at the end of a run
        app = make_app(ws)
        async with app.run_test(size=NARROW) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("3")
            await wait_for(pilot, lambda: "Comparison" in (app.screen.loaded_text or ""))
            viewer = app.screen.query_one(MarkdownViewer)
            await pilot.press("t")
            tree = viewer.table_of_contents.query_one(Tree)
            await wait_for(pilot, lambda: "workspace:batch_32" in shown(tree))
            assert "Comparison of model revisions" in shown(tree)
            await pilot.press("down", "down", "enter")  # a heading: the report again
            await wait_for(pilot, lambda: not viewer.show_table_of_contents)
            app.screen.show(run.report_md, f"Report of run {RUN_OK}")
            await wait_for(pilot, lambda: "VersionSpectrograms" in (app.screen.loaded_text or ""))
            await pilot.pause()
            drawn = ["".join(shown(cell).split()) for cell in viewer.query(".cell")]
            for name in ("VersionSpectrograms", "MakeSpectrograms", "TrainFold batch 16 fold 1"):
                assert name.replace(" ", "") in drawn, drawn  # a cell that shows it whole

    @run_async
    async def test_log_search_goes_sideways_to_a_hit_off_screen(self, tmp_path: Path) -> None:
        from kwsops.tui.widgets.logview import LogView
        from tests.helpers.tui_workspace import RUN_FAILED

        ws = make_workspace(tmp_path / "ws", active=False)
        log = RunPaths(ws / "reports" / "runs" / RUN_FAILED).log  # the newest run's
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("2023-11-14 22:30:00,000 INFO kwsops: " + "x" * 150 + " needle here\n")
        app = make_app(ws)
        async with app.run_test(size=NARROW) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("2")
            view = app.screen.query_one(LogView)
            await wait_for(pilot, lambda: view.line_count >= 4)
            assert view.scroll_x == 0
            await pilot.press("slash", *"needle", "enter")
            await wait_for(pilot, lambda: view.current is not None)
            await wait_for(pilot, lambda: "needle" in shown(view))
            assert view.scroll_x > 0

    @run_async
    async def test_curves_count_whole_epochs(self, tmp_path: Path) -> None:
        from textual_plotext import PlotextPlot

        ws = make_workspace(tmp_path / "ws")  # the active run has trained three epochs
        app = make_app(ws)
        async with app.run_test(size=NARROW) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("6")
            await wait_for(pilot, lambda: app.screen.curves)
            plot = app.screen.query_one("#accuracy-plot", PlotextPlot)
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in plot.plt.build().splitlines()]
            axis = next(i for i, line in enumerate(lines) if "epoch" in line)
            ticks = lines[axis - 1].split()
            assert ticks == ["1", "2", "3"], lines[axis - 1]
