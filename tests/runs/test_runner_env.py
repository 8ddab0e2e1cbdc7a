"""A run started in-process (as tests and the validate command do) leaves nothing behind in
the environment that a later `luigi` or `kwsops` process would inherit."""

from __future__ import annotations

import os

from kwsops.cli.main import main


def test_in_process_run_restores_the_environment(workspace, monkeypatch):
    monkeypatch.chdir(workspace.root)
    watched = ("KWSOPS_RUN_DIR", "KWSOPS_WORKSPACE", "KWSOPS_TORCH_THREADS", "LUIGI_CONFIG_PATH")
    before = {name: os.environ.get(name) for name in watched}
    (workspace.input_dir / "catch").mkdir(parents=True)
    (workspace.input_dir / "catch" / "text__file.wav").write_text("not audio\n")
    code = main(["-C", str(workspace.root), "run", "--quiet", "--workers", "2"])
    assert code == 1  # no usable recording: Preprocess fails, and says so
    assert {name: os.environ.get(name) for name in watched} == before
