"""Fixtures of the comparison and detection tests."""

from __future__ import annotations

import pytest

from tests.helpers.trained import Trained


@pytest.fixture
def trained(trained_workspace: Trained, monkeypatch) -> Trained:
    """The session's trained workspace as the current folder, one inference thread."""
    monkeypatch.chdir(trained_workspace.ws.root)
    monkeypatch.setenv("KWSOPS_TORCH_THREADS", "1")
    return trained_workspace
