"""Console fixtures: UTC for every test, a realistic workspace, a stand-in `kwsops run` script
for launch tests (the console under test is real; what it launches is recorded, not run)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.helpers.tui import FAKE_RUN
from tests.helpers.tui_workspace import make_workspace

CONSOLE_TIMEOUT_S = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A console test that hangs fails after two minutes instead of stalling the suite."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(CONSOLE_TIMEOUT_S))


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def fake_run(tmp_path: Path) -> list[str]:
    script = tmp_path / "fake_run.py"
    script.write_text(FAKE_RUN)
    return [sys.executable, str(script)]
