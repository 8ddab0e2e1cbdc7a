"""kwsops.compare.discover: the revisions the Launch screen offers (real git, real folders)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kwsops.compare.discover import discover_revisions
from kwsops.compare.revisions import is_valid_spec

DIGEST = "0123456789abcdef0123456789abcdef"


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for batch in ("batch_16", "batch_32"):
        (root / "data" / "models" / batch / "fold_0").mkdir(parents=True)
        (root / "data" / "models" / batch / "fold_0" / "model.safetensors").write_bytes(b"")
    (root / "data" / "models" / "batch_0").mkdir()  # no fold models: nothing to compare
    (root / "data" / "models" / "batch_16" / "metrics.json").write_text('{"mean_accuracy": 0.9123}')
    git(root, "init", "-q")
    (root / "README").write_text("x")
    git(root, "add", "README")
    git(root, "commit", "-qm", "unrelated")
    (root / "data" / "models.dvc").write_text(f"outs:\n- md5: {DIGEST}.dir\n  path: models\n")
    git(root, "add", "data/models.dvc")
    git(root, "commit", "-qm", "models: batch sizes 16, 64 epochs 3")
    (root / "data" / "models.dvc").write_text("outs:\n- md5: ffff.dir\n  path: models\n")
    git(root, "add", "data/models.dvc")
    git(root, "commit", "-qm", "retrain with batch_32")
    return root


def test_workspace_and_git_revisions(repo: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "kwsops.tracking.index", None)  # tracking not installed
    found = discover_revisions(repo)
    specs = [r.spec for r in found.revisions]
    assert specs[:2] == ["workspace:batch_16", "workspace:batch_32"]
    assert "workspace:batch_0" not in specs
    assert found.revisions[0].title == "accuracy 0.912"
    git_specs = [s for s in specs if s.startswith("git:")]
    assert len(git_specs) == 3  # newest commit: batch_32 from its message; older: 16 and 64
    assert git_specs[0].endswith(":batch_32") and git_specs[1].endswith(":batch_16")
    assert all(r.when and r.title for r in found.revisions if r.source == "git")
    assert [w for w in found.warnings if w.startswith("clearml")]
    assert all(is_valid_spec(s) for s in specs)


def test_git_batches_come_from_the_message_else_the_dvc_cache_listing(repo: Path) -> None:
    other = "fedcba9876543210fedcba9876543210"
    listing = repo / ".dvc" / "cache" / "files" / "md5" / other[:2] / f"{other[2:]}.dir"
    listing.parent.mkdir(parents=True)
    entries = [{"relpath": "batch_8/fold_0/model.safetensors", "md5": "x"},
               {"relpath": "batch_4/metrics.json", "md5": "y"}]  # fmt: skip
    listing.write_text(json.dumps(entries))
    (repo / "data" / "models.dvc").write_text(f"outs:\n- md5: {other}.dir\n  path: models\n")
    git(repo, "add", "data/models.dvc")
    git(repo, "commit", "-qm", "a hand-made commit of the models")
    found = discover_revisions(repo, clearml=False)
    assert [r.spec.split(":")[-1] for r in found.revisions if r.source == "git"] == [
        "batch_8",  # the listing: batch_4 holds no model
        "batch_32",
        "batch_16",
        "batch_64",
    ]
    (repo / "data" / "models.dvc").write_text("outs:\n- md5: 0000.dir\n  path: models\n")
    git(repo, "add", "data/models.dvc")
    git(repo, "commit", "-qm", "neither named nor cached")
    found = discover_revisions(repo, clearml=False)
    assert len([r for r in found.revisions if r.source == "git"]) == 4  # offers nothing new


def test_clearml_tasks_and_failures(repo: Path, monkeypatch) -> None:
    fake = types.ModuleType("kwsops.tracking.index")
    fake.list_tasks = lambda root, name: [
        {"id": "abc123", "name": name, "status": "completed", "created": "2024-05-01"},
        types.SimpleNamespace(id="def456", name=name, status="failed", params={"batch_size": 32}),
    ]
    monkeypatch.setitem(sys.modules, "kwsops.tracking.index", fake)
    found = discover_revisions(repo)
    clearml = [r for r in found.revisions if r.source in ("clearml", "last")]
    assert [r.spec for r in clearml] == ["clearml:abc123", "clearml:def456", "last:3"]
    assert "batch 32" in clearml[1].title

    def broken(root, name):
        raise ConnectionError("server unreachable")

    fake.list_tasks = broken
    found = discover_revisions(repo)
    assert any("server unreachable" in w for w in found.warnings)
    assert any(r.source == "workspace" for r in found.revisions)


def test_real_tracking_with_no_tasks_yet(repo: Path) -> None:
    found = discover_revisions(repo)
    assert not [w for w in found.warnings if w.startswith("clearml")], found.warnings
    assert not [r for r in found.revisions if r.source in ("clearml", "last")]


def test_not_a_repo_and_fresh_repo(tmp_path: Path) -> None:
    assert discover_revisions(tmp_path, clearml=False).warnings  # git says: not a repository
    git(tmp_path, "init", "-q")
    found = discover_revisions(tmp_path, clearml=False)
    assert found.revisions == [] and found.warnings == []


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("workspace:batch_32", True),
        ("git:HEAD~2:batch_16", True),
        ("git:a1b2c3:batch_64", True),
        ("clearml:0f3e-99", True),
        ("last:3", True),
        ("last:0", False),
        ("batch_32", False),
        ("git::batch_1", False),
        ("workspace:32", False),
    ],
)
def test_spec_forms(spec: str, ok: bool) -> None:
    assert is_valid_spec(spec) is ok
