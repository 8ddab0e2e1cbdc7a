"""What is versioned is what was computed (issue 20, items 1-3): deleted outputs come back
(from the DVC cache, else computed again), a clip damaged through the hard-linked cache is
found and mended, a wrong pointer is never committed, and `kwsops verify` checks everything.
Real `kwsops run`, git and DVC; the module runs the pipeline once and every test damages its
own copy of that workspace, so they pass alone and in any order."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kwsops.pipeline.version import require_versioned
from kwsops.runs.events import read_events
from kwsops.runs.folder import list_runs
from kwsops.versioning.errors import VersioningError
from kwsops.versioning.integrity import file_md5, object_path, pointer
from kwsops.versioning.runner import tool
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.files import git
from tests.helpers.workspaces import clone_workspace

pytestmark = pytest.mark.slow

RUN_ARGS = ("run", "--batch-sizes", "16", "--epochs", "1", "--folds", "2")
CACHE = Path(".dvc/cache")


@pytest.fixture
def ran(demo_ran: Workspace) -> Workspace:
    """The demo recordings run through the pipeline once (tests/conftest.py's ``demo_ran``,
    with RUN_ARGS); never changed."""
    return demo_ran


@pytest.fixture
def ws(ran: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the module's run (hard links to its DVC cache kept), to damage."""
    return clone_workspace(ran.root, tmp_path / "ws")


def summaries(ws: Workspace) -> dict[str, str]:
    """Family -> the detail of the last run's task_done events."""
    run = list_runs(ws.runs_dir)[0]
    return {
        e["family"]: str(e.get("detail") or e.get("summary", {}).get("detail", ""))
        for e in read_events(run.events).events
        if e["event"] == "task_done"
    }


def damage(path: Path, offset: int = 1000, size: int = 400) -> None:
    """Overwrite bytes in place, as an editor or a tool run as root does: same inode."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(bytes(255 - (i % 256) for i in range(size)))


def dvc_clean(ws: Workspace) -> bool:
    out = subprocess.run([tool("dvc"), "status", "--json"], cwd=ws.root, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return json.loads(out or "{}") == {}


def versioned_md5(ws: Workspace, path: Path) -> str:
    rel = path.relative_to(ws.output_dir).as_posix()
    listing = object_path(ws.root / CACHE, pointer(ws.data_dir / "output.dvc"))
    return next(e["md5"] for e in json.loads(listing.read_text()) if e["relpath"] == rel)


def test_deleted_outputs_come_back_from_the_cache_and_the_run_exits_0(ws: Workspace) -> None:
    models = file_md5(ws.batch_dir(16) / "fold_0" / "model.safetensors")
    head = git(ws.root, "rev-parse", "HEAD")
    for name in ("spec_ds", "models", "output"):
        shutil.rmtree(ws.data_dir / name)
    result = run_cli(ws, *RUN_ARGS, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    done = summaries(ws)
    for family in ("Preprocess", "MakeSpectrograms", "Train"):
        assert "restored from the DVC cache" in done[family], done
    assert "Validate" in done  # everything after a deleted output ran again
    assert (ws.spec_dir / "test.safetensors").is_file() and len(list(ws.output_dir.rglob("*.wav")))
    assert file_md5(ws.batch_dir(16) / "fold_0" / "model.safetensors") == models
    assert git(ws.root, "rev-parse", "HEAD") == head and dvc_clean(ws)


def test_a_deleted_output_whose_cache_object_is_gone_is_computed_again(ws: Workspace) -> None:
    listing = object_path(ws.root / CACHE, pointer(ws.data_dir / "spec_ds.dvc"))
    entries = json.loads(listing.read_text())
    shutil.rmtree(ws.spec_dir)
    for entry in entries:  # the cache lost the spectrograms
        object_path(ws.root / CACHE, entry["md5"]).unlink(missing_ok=True)
    result = run_cli(ws, *RUN_ARGS, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "restored" not in summaries(ws)["MakeSpectrograms"]
    assert (ws.spec_dir / "test.safetensors").is_file() and dvc_clean(ws)


def test_a_clip_damaged_through_the_hard_link_is_mended_never_relinked(ws: Workspace) -> None:
    """The issue's repro: 400 bytes overwritten in one data/output clip (file and cache object
    are one inode), then an unrelated input change; the regenerated clip must not be linked
    back to the damaged object, and the run must not version the damaged bytes."""
    clip = sorted(ws.output_dir.rglob("*.wav"))[3]
    good = versioned_md5(ws, clip)
    assert file_md5(clip) == good
    linked = clip.stat().st_nlink > 1  # hard links (ext4, tmpfs): the cache's copy too
    damage(clip)
    assert (file_md5(object_path(ws.root / CACHE, good)) != good) == linked
    extra = next(ws.input_dir.rglob("*.wav"))
    shutil.copy(extra, extra.with_name("zz-extra__" + extra.name))  # an unrelated change
    try:
        result = run_cli(ws, *RUN_ARGS, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        assert file_md5(clip) == good == versioned_md5(ws, clip)
        assert file_md5(object_path(ws.root / CACHE, good)) == good
        assert dvc_clean(ws) and run_cli(ws, "verify").returncode == 0
    finally:
        extra.with_name("zz-extra__" + extra.name).unlink(missing_ok=True)


def test_a_damaged_clip_alone_is_found_by_the_next_run(ws: Workspace) -> None:
    clip = sorted(ws.output_dir.rglob("*.wav"))[5]
    good = versioned_md5(ws, clip)
    damage(clip)
    result = run_cli(ws, *RUN_ARGS, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert file_md5(clip) == good and file_md5(object_path(ws.root / CACHE, good)) == good
    assert "Preprocess" in summaries(ws)  # not "up to date": the output was done again


def test_a_wrong_pointer_is_set_right_and_never_committed(ws: Workspace) -> None:
    dvc_file = ws.data_dir / "input.dvc"
    right = pointer(dvc_file)
    dvc_file.write_text(dvc_file.read_text().replace(right, "0" * 32 + ".dir"))
    result = run_cli(ws, *RUN_ARGS, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert pointer(dvc_file) == right
    committed = git(ws.root, "show", "HEAD:data/input.dvc")
    assert "0" * 32 not in committed and right in committed


def test_versionmodels_commits_only_pointers_the_cache_and_remote_hold(ws: Workspace) -> None:
    dvc_file = ws.data_dir / "spec_ds.dvc"
    original = dvc_file.read_text()
    head = git(ws.root, "rev-parse", "HEAD")
    dvc_file.write_text(original.replace(pointer(dvc_file), "0" * 32 + ".dir"))
    try:
        with pytest.raises(VersioningError) as refused:
            require_versioned(ws)
        assert "\n" not in str(refused.value) and "data/spec_ds.dvc" in str(refused.value)
        assert "kwsops verify --repair" in str(refused.value)
    finally:
        dvc_file.write_text(original)
    assert git(ws.root, "rev-parse", "HEAD") == head
    # an object the remote lost is pushed again before the commit (DVC's `status -c`)
    remote = ws.local_remote_dir / "files" / "md5"
    lost = object_path(ws.local_remote_dir, pointer(ws.data_dir / "models.dvc"))
    assert lost.is_relative_to(remote) and lost.is_file()
    lost.unlink()
    require_versioned(ws)
    assert lost.is_file()


def test_verify_names_each_bad_file_and_repair_mends_it(ws: Workspace) -> None:
    clip = sorted(ws.output_dir.rglob("*.wav"))[7]
    good = versioned_md5(ws, clip)
    recording = sorted(ws.input_dir.rglob("*.wav"))[2]
    damage(clip)
    damage(recording)  # a raw recording changed in place: the user's, never rewritten
    changed = hashlib.sha256(recording.read_bytes()).hexdigest()
    try:
        bad = run_cli(ws, "verify", check=False)
        assert bad.returncode == 1
        rel_clip, rel_rec = (p.relative_to(ws.root).as_posix() for p in (clip, recording))
        assert f"BAD {rel_clip}" in bad.stderr and f"BAD {rel_rec}" in bad.stderr
        assert "kwsops verify --repair" in bad.stderr
        fixed = run_cli(ws, "verify", "--repair", check=False)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert file_md5(clip) == good
        assert hashlib.sha256(recording.read_bytes()).hexdigest() == changed  # kept as it is
        assert f"repaired {rel_clip}" in fixed.stdout and f"repaired {rel_rec}" in fixed.stdout
        assert ", 0 bad" in fixed.stdout
    finally:
        git(ws.root, "checkout", "--", ".")
        subprocess.run([tool("dvc"), "checkout", "--force"], cwd=ws.root, capture_output=True)
    run_cli(ws, *RUN_ARGS)
    assert run_cli(ws, "verify").returncode == 0


def test_a_recording_changed_in_place_leaves_no_damaged_object(ws: Workspace) -> None:
    """Changed through the hard link, a recording's old cached copy holds the new bytes under
    the old name: the run drops that object (the remote keeps the old bytes) and versions the
    new content; the recording itself is never rewritten."""
    recording = sorted(ws.input_dir.rglob("*.wav"))[4]
    listing = object_path(ws.root / CACHE, pointer(ws.data_dir / "input.dvc"))
    rel = recording.relative_to(ws.input_dir).as_posix()
    old = next(e["md5"] for e in json.loads(listing.read_text()) if e["relpath"] == rel)
    damage(recording, offset=2000, size=64)
    changed = file_md5(recording)
    result = run_cli(ws, *RUN_ARGS, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert file_md5(recording) == changed  # the user's file, as they left it
    stale = object_path(ws.root / CACHE, old)
    assert not stale.exists() or file_md5(stale) == old
    assert (ws.local_remote_dir / "files" / "md5" / old[:2] / old[2:]).is_file()
    assert run_cli(ws, "verify").returncode == 0 and dvc_clean(ws)
