"""Atomic writes, content stamps, secret scrubbing and the core's import boundary."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import time

import pytest

from kwsops.atomic import atomic_dir, atomic_write_json, remove_leftovers
from kwsops.config import THREADS_ENV, resolve_threads
from kwsops.secrets import ScrubbingFilter, register_secret, scrub
from kwsops.stamps import STAMP_NAME, digest, stamp_matches, tree_digest, write_stamp

# what `kwsops --help` and a no-op `kwsops run` import: never torch, dvc, clearml or luigi
CHEAP_MODULES = [
    "kwsops",
    "kwsops.cli.main",
    "kwsops.config",
    "kwsops.atomic",
    "kwsops.stamps",
    "kwsops.runs.folder",
    "kwsops.runs.state",
    "kwsops.runs.session",
    "kwsops.runs.live",
    "kwsops.workspace",
    "kwsops.secrets",
    "kwsops.pipeline.preprocess",
    "kwsops.pipeline.train",
    "kwsops.pipeline.version",
]


def core_modules() -> list[str]:
    """Every module of the core: all of kwsops but the console and the command line."""
    import kwsops

    found = [info.name for info in pkgutil.walk_packages(kwsops.__path__, "kwsops.")]
    return sorted(
        name
        for name in found
        if not name.startswith(("kwsops.tui", "kwsops.cli")) and not name.endswith("__main__")
    )


def imported_by(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(','.join(sorted(m for m in {watched!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_core_never_imports_luigi_or_textual():
    modules = core_modules()
    assert "kwsops.ml.training" in modules and "kwsops.tui.app" not in modules
    assert imported_by(modules, ("luigi", "textual")) == []


def test_the_command_line_starts_without_heavy_imports():
    assert imported_by(CHEAP_MODULES, ("luigi", "textual", "torch", "dvc", "clearml")) == []


def test_atomic_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (final / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("two")
        raise RuntimeError("killed half way")
    assert (final / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    (tmp_path / ".out.tmp-abc").mkdir()
    (tmp_path / ".out.old-123").mkdir()
    (tmp_path / "out").mkdir()
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == [".out.old-123", ".out.tmp-abc"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_tree_digest_follows_content_not_timestamps(tmp_path):
    root = tmp_path / "input"
    (root / "catch").mkdir(parents=True)
    (root / "catch" / "a.wav").write_bytes(b"abc")
    cache = tmp_path / "cache.json"
    first = tree_digest(root, cache)
    os.utime(root / "catch" / "a.wav", (time.time() + 10, time.time() + 10))
    assert tree_digest(root, cache) == first
    (root / "catch" / "a.wav").write_bytes(b"abd")
    assert tree_digest(root, cache) != first
    (root / "catch" / "a.wav").write_bytes(b"abc")
    (root / "catch" / "b.wav").write_bytes(b"")
    assert tree_digest(root, cache) != first


def test_stamp_matches_only_its_key(tmp_path):
    assert not stamp_matches(tmp_path, "k1")
    write_stamp(tmp_path, "k1", kept=3)
    assert stamp_matches(tmp_path, "k1")
    assert not stamp_matches(tmp_path, "k2")
    (tmp_path / STAMP_NAME).write_text("{not json")
    assert not stamp_matches(tmp_path, "k1")
    (tmp_path / STAMP_NAME).write_text('["k1"]')  # JSON, but not a stamp
    assert not stamp_matches(tmp_path, "k1")
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})


def test_stage_targets_use_the_stamp_check(tmp_path):
    from tasks.base import StampTarget  # the live path: every stage's output() is one

    target = StampTarget(tmp_path / STAMP_NAME, "k1")
    assert not target.exists()
    write_stamp(tmp_path, "k1")
    assert target.exists() and not StampTarget(tmp_path / STAMP_NAME, "k2").exists()
    (tmp_path / STAMP_NAME).write_text('["k1"]')
    assert not target.exists()


def test_scrub_masks_env_secrets_registered_values_and_url_passwords(monkeypatch):
    monkeypatch.setenv("DVC_PASSWORD", "hunter2-secret")
    register_secret("typed-at-prompt")
    text = "push https://alice:pw123@dav.example/webdav failed hunter2-secret typed-at-prompt"
    cleaned = scrub(text)
    assert "hunter2-secret" not in cleaned and "typed-at-prompt" not in cleaned
    assert "pw123" not in cleaned and "alice:***@" in cleaned


def test_scrubbing_filter_cleans_log_records(monkeypatch):
    import logging

    monkeypatch.setenv("DVC_PASSWORD", "s3cr3t-value")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "auth %s", ("s3cr3t-value",), None)
    ScrubbingFilter().filter(record)
    assert "s3cr3t-value" not in record.getMessage()


def test_atomic_write_json_round_trip(tmp_path):
    path = atomic_write_json(tmp_path / "x" / "a.json", {"b": 1})
    assert json.loads(path.read_text()) == {"b": 1}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_cli_help_is_fast_to_import():
    result = subprocess.run(
        [sys.executable, "-m", "kwsops.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo-data" in result.stdout and "run" in result.stdout


def test_passwords_in_a_dvc_config_are_masked(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("['remote \"webdav\"']\n    url = webdav://h/x\n")
    config = tmp_path / ".dvc" / "config.local"
    config.write_text("['remote \"webdav\"']\n    user = me\n    password = from-config-pw\n")
    from kwsops.runs.session import register_workspace_secrets
    from kwsops.workspace import Workspace

    register_workspace_secrets(Workspace(tmp_path))  # what every entry point calls
    assert "from-config-pw" not in scrub("auth failed for from-config-pw")


def test_threads_come_from_argument_then_env_then_all_cores(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert resolve_threads(3) == 3
    assert resolve_threads() >= 1
    monkeypatch.setenv(THREADS_ENV, "1")
    assert resolve_threads() == 1 and resolve_threads(2) == 2
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(ValueError, match=THREADS_ENV):
        resolve_threads()
