"""Shared pieces of the console tests: the app under test and small helpers (fixtures:
tests/tui/conftest.py)."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

from textual.command import Command, CommandList, CommandPalette
from textual.css.query import NoMatches
from textual.widgets import DataTable

from kwsops.tui.app import KwsApp
from tests.helpers.tui_workspace import NOW

SIZE = (120, 40)


def make_app(root: Path, **kwargs) -> KwsApp:
    return KwsApp(root, clock=lambda: NOW, poll_interval=0.1, **kwargs)


def cells(table: DataTable, row: int) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_row_at(row)]


def stage_states(app: KwsApp) -> dict[str, str]:
    table = app.screen.query_one("#stages", DataTable)
    return {cells(table, i)[0].strip(): cells(table, i)[1][2:] for i in range(table.row_count)}


FAKE_RUN = """\
import json, os, sys, time
from kwsops.cli.common import run_request
from kwsops.cli.main import build_parser
args = sys.argv[1:]
root = os.environ["KWSOPS_WORKSPACE"]
run_id = args[args.index("--run-id") + 1]
# what a real run records: the request its flags describe (and argv, for the tests to read)
parsed = build_parser().parse_args(args)
params = run_request(parsed, parsed.command).params() if parsed.command == "run" else {}
folder = os.path.join(root, "reports", "runs", run_id)
os.makedirs(folder)
json.dump({"run_id": run_id, "argv": args, **params},
          open(os.path.join(folder, "params.json"), "w"))
json.dump({"run_id": run_id, "status": "ok", "pid": os.getpid(), "started": time.time(),
           "duration": 0.1, "exit_code": 0}, open(os.path.join(folder, "status.json"), "w"))
"""


def launched_argv(ws: Path) -> list[str]:
    newest = sorted((ws / "reports" / "runs").iterdir())[-1]
    return json.loads((newest / "params.json").read_text())["argv"]


def run_async(test: Callable) -> Callable:
    """Run an async test on a fresh event loop (no async pytest plugin is required)."""

    @functools.wraps(test)
    def wrapper(*args: object, **kwargs: object) -> object:
        return asyncio.run(test(*args, **kwargs))

    return wrapper


def holds(condition: Callable[[], object]) -> bool:
    """``condition()``, where a widget not mounted yet (a screen still composing) is False."""
    try:
        return bool(condition())
    except NoMatches:
        return False


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the app work until ``condition()`` is true (the monitor runs in a thread)."""
    deadline = time.monotonic() + timeout
    while not holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.05)
    await pilot.pause()


async def wait_for_palette(pilot, title: str) -> None:
    """Wait until the command palette highlights the command whose title starts with
    ``title`` (it gathers its hits in a worker and shows them in batches)."""

    def offered() -> bool:
        palette = pilot.app.screen
        if not isinstance(palette, CommandPalette):
            return False
        commands = palette.query_one(CommandList)
        if commands.highlighted is None:
            return False
        option = commands.get_option_at_index(commands.highlighted)
        return isinstance(option, Command) and str(option.hit.text).lower().startswith(
            title.lower()
        )

    await wait_for(pilot, offered)
