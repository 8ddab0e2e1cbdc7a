"""The console: `p` on the report view promotes through its dialog (the real `kwsops promote`
runs), the dashboard names the production version, the runs view marks the run that made it."""

from __future__ import annotations

from gto import api as gto_api
from textual.widgets import Checkbox, DataTable, Input, Static

from kwsops.runs.events import EventLog
from kwsops.runs.folder import create_run, write_status
from kwsops.tui.dialogs.promote import PromoteDialog
from tests.helpers.trained import Trained
from tests.helpers.tui import SIZE, cells, make_app, run_async, wait_for

# generous deadlines: the waits end as soon as their condition holds; a loaded machine (the
# whole suite, other workers) only makes them longer
WAIT_S = 60.0
PROMOTE_S = 180.0  # `kwsops promote` runs as its own process (git, gto)


def run_folders(ws) -> list[str]:
    return sorted(p.name for p in ws.runs_dir.iterdir() if p.is_dir())


def row_ids(table: DataTable) -> list[str]:
    return [str(row.value) for row in table.rows]


def versioning_run(trained: Trained) -> str:
    """A finished run whose VersionModels made the weak training's commit."""
    paths = create_run(trained.ws.runs_dir, {"command": "run", "batch_sizes": [4]}, "cli")
    EventLog(paths.events).emit("task_done", task="VersionModels(...)", family="VersionModels",
                                duration=1.0, detail="", summary={"commit": trained.weak_sha})  # fmt: skip
    write_status(paths, status="ok", duration=3.0, exit_code=0)
    return paths.run_id


@run_async
async def test_p_promotes_and_the_dashboard_and_runs_view_show_it(trained_copy: Trained):
    ws = trained_copy.ws
    run_id = versioning_run(trained_copy)
    app = make_app(ws.root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")  # the report view
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteDialog), timeout=WAIT_S)
        dialog = app.screen
        dialog.query_one("#promote-revision", Input).value = f"git:{trained_copy.weak_sha}:batch_4"
        dialog.query_one("#promote-version", Input).value = "2.0.0"
        dialog.query_one("#promote-export", Checkbox).value = False  # the CLI tests export
        await pilot.click("#promote")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromoteDialog), timeout=WAIT_S)
        await wait_for(pilot, lambda: app.production is not None, timeout=PROMOTE_S)
        assert app.production.ref == "kws@v2.0.0" and app.production.run_id == run_id
        assert gto_api.show(str(ws.root))["kws"]["stage"]["production"] == "v2.0.0"

        await pilot.press("1")
        banner = app.screen.query_one("#run-banner", Static)
        await wait_for(
            pilot, lambda: "production kws@v2.0.0" in str(banner.render()), timeout=WAIT_S
        )
        assert f"from run {run_id}" in str(banner.render())

        await pilot.press("4")
        table = app.screen.query_one("#runs", DataTable)
        # the copied workspace may hold other runs (tests that ran `kwsops validate` in the
        # shared trained workspace before it was copied): the one that made the production
        # version is marked, and it alone
        expected = set(run_folders(ws))
        assert run_id in expected
        await wait_for(pilot, lambda: set(row_ids(table)) == expected, timeout=WAIT_S)
        marked = [cells(table, i)[0] for i in range(table.row_count) if "★" in cells(table, i)[0]]
        assert marked == [f"{run_id} ★"], marked
