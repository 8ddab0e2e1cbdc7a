"""SVG snapshots of every screen and dialog at 80x24 and 120x40 (pytest-textual-snapshot).

State is asserted in the feature tests; these catch what a person would see change: a footer
that cuts the keys that act, a column that cuts a value, a dialog that does not fit. The
fixtures pin everything that moves: the clock, the time zone, run ids, the workspace name.
Snapshots live in tests/tui/snapshots/; refresh them with `pytest tests/tui/test_snapshots.py
--snapshot-update` and look at every changed SVG before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_textual_snapshot

from kwsops.tui.widgets.logview import LogView
from tests.helpers.tui import make_app, wait_for
from tests.helpers.tui_workspace import RUN_FAILED, make_workspace

pytestmark = pytest.mark.timeout(180)
SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@pytest.fixture(autouse=True)
def snapshots_dir(monkeypatch):
    """Keep the SVGs in tests/tui/snapshots/<test file>/ rather than syrupy's __snapshots__."""

    def dirname(cls, *, test_location) -> str:
        return str(SNAPSHOTS / test_location.basename)

    monkeypatch.setattr(pytest_textual_snapshot.SVGImageExtension, "dirname", classmethod(dirname))


async def ready(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.snapshot is not None)


@SIZES
def test_dashboard(snap_compare, ws: Path, size) -> None:
    assert snap_compare(make_app(ws), terminal_size=size, run_before=ready)


@SIZES
def test_logs_with_search(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("2")
        view = pilot.app.screen.query_one(LogView)
        await wait_for(pilot, lambda: view.line_count == 14)
        await pilot.press("slash", *"trainfold", "enter")
        await wait_for(pilot, lambda: view.current is not None)

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


def test_failed_run_log_filtered(snap_compare, ws: Path) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("2")
        pilot.app.screen.open_run(RUN_FAILED)
        view = pilot.app.screen.query_one(LogView)
        await wait_for(pilot, lambda: view.line_count > 0)
        await pilot.press("f", *"e", "enter")
        await wait_for(pilot, lambda: view.filtered)

    assert snap_compare(make_app(ws), terminal_size=(120, 40), run_before=run_before)


@SIZES
def test_report(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: pilot.app.screen.loaded_text is not None)

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


@SIZES
def test_report_figures(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: pilot.app.screen.loaded_text is not None)
        await pilot.press("v")
        switcher = pilot.app.screen.query_one("#report-switcher")
        await wait_for(pilot, lambda: switcher.current == "report-figures")

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


@SIZES
def test_runs(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("4", "down")  # the failed run: its reason below the table

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


@SIZES
def test_compare_runs(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("4", "down", "space", "down", "d")
        await wait_for(pilot, lambda: pilot.app.screen.query("#compare-table"))

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


@SIZES
def test_data(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await pilot.press("5")
        await wait_for(pilot, lambda: pilot.app.screen.summary is not None)

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


@SIZES
def test_curves(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("6")
        await wait_for(pilot, lambda: pilot.app.screen.curves)

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


@SIZES
def test_launch(snap_compare, tmp_path: Path, size) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: pilot.app.screen.discovery is not None)
        await pilot.press("down", "space")  # 32 unticked: it looks unlike 16 and 64

    root = make_workspace(tmp_path / "ws", active=False)
    assert snap_compare(make_app(root), terminal_size=size, run_before=run_before)


@SIZES
def test_help(snap_compare, ws: Path, size) -> None:
    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app(ws), terminal_size=size, run_before=run_before)


def test_cancel_dialog(snap_compare, ws: Path) -> None:
    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: pilot.app.snapshot is not None and pilot.app.snapshot.active)
        await pilot.press("c")

    assert snap_compare(make_app(ws), terminal_size=(80, 24), run_before=run_before)
