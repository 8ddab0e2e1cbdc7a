"""kwsops.versioning.dvc with real git and real dvc in temp workspaces, default local remote."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.config import Config

from kwsops.atomic import atomic_dir
from kwsops.versioning.dvc import (
    dvc_add,
    dvc_pull,
    dvc_push,
    dvc_status_cloud,
    models_at_revision,
    version_stage,
)
from kwsops.versioning.dvc_config import ensure_cache_links
from kwsops.versioning.errors import VersioningError
from kwsops.versioning.git import git_commit
from kwsops.versioning.runner import run_dvc
from tests.helpers.files import digest, git, write_tree


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything `dvc add` could change about a file: content, mtime, inode, mode, links."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        content = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        out[p.relative_to(root).as_posix()] = (
            content,
            st.st_mtime_ns,
            st.st_ino,
            st.st_mode,
            st.st_nlink,
        )
    return out


@pytest.fixture(scope="session")
def template(workspace_template: Path) -> Path:
    """One `kwsops init` per session (tests/conftest.py); tests get copies of it."""
    return workspace_template


def copy_workspace(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    with Config(dvc_dir=str(dest / ".dvc")).edit("local") as local:  # its absolute path
        local["remote"]["local"]["url"] = str(dest / ".kwsops" / "dvc-remote")
    return dest


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Path:
    root = copy_workspace(template, tmp_path / "ws")
    write_tree(
        root / "data" / "input",
        {
            "yes/spk1__yes_1.wav": os.urandom(700),
            "yes/spk2__yes_1.wav": os.urandom(900),
            "Whatsapp/no/spk3__no_1.ogg": os.urandom(500),
        },
    )
    return root


def test_version_stage_links_raw_input_bytes_and_mtime_unchanged(ws: Path) -> None:
    before = snapshot(ws / "data" / "input")
    version = version_stage(ws, "data/input")
    after = snapshot(ws / "data" / "input")
    assert after.keys() == before.keys()
    hardlinked = chosen_type(ws) == "hardlink"
    for rel, (sha, mtime, inode, _mode, _links) in before.items():
        if sha is None:  # a folder
            continue
        assert after[rel][:3] == (sha, mtime, inode), rel  # the same file, bytes, mtime
        if hardlinked:  # linked into the cache in place, read-only
            assert after[rel][3] & 0o222 == 0 and after[rel][4] == 2, rel
            cached = cache_object(ws, sha_to_md5(ws / "data" / "input" / rel))
            assert cached.stat().st_ino == inode, rel
    assert version.dvc_file == ws / "data" / "input.dvc"
    assert version.md5.endswith(".dir") and version.md5[:-4] in version.dvc_file.read_text()
    assert version.push.remote == "local" and version.push.files == 3  # the .dir is no file
    assert dvc_status_cloud(ws) == {}
    # nothing changed: nothing to upload, raw files as they were after the first add
    assert dvc_push(ws, ["data/input"]).files == 0
    assert snapshot(ws / "data" / "input") == after
    # pulled into an empty cache: the three files count, the folder listing does not
    shutil.rmtree(ws / "data" / "input")
    shutil.rmtree(ws / ".dvc" / "cache")
    assert dvc_pull(ws, ["data/input"]).files == 3
    assert {rel: v[0] for rel, v in snapshot(ws / "data" / "input").items()} == {
        rel: v[0] for rel, v in after.items()
    }


@pytest.mark.parametrize("cache_type", ["hardlink,copy", "symlink"])
def test_unlinked_raw_input_is_never_touched(ws: Path, cache_type: str) -> None:
    # `[VersionInput] link = false`: a copy in the cache, whatever cache.type says
    run_dvc(ws, ["config", "--local", "cache.type", cache_type])
    before = snapshot(ws / "data" / "input")
    dvc_add(ws, "data/input", link=False)
    assert snapshot(ws / "data" / "input") == before


def sha_to_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cache_object(ws: Path, md5: str) -> Path:
    return ws / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def test_init_sets_the_link_type_the_file_system_allows(ws: Path, tmp_path: Path) -> None:
    chosen = Config(dvc_dir=str(ws / ".dvc"))["cache"]["type"]
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    try:
        os.link(probe, tmp_path / "probe-link")
        linkable = True
    except OSError:
        linkable = False
    assert chosen in (["reflink", "copy"], ["hardlink", "copy"] if linkable else ["copy"])
    # the user's choice wins: an existing cache.type is never overwritten
    run_dvc(ws, ["config", "--local", "cache.type", "copy"])
    assert ensure_cache_links(ws) is None
    assert Config(dvc_dir=str(ws / ".dvc"))["cache"]["type"] == ["copy"]


def test_older_workspace_gets_links_on_its_next_version(ws: Path) -> None:
    run_dvc(ws, ["config", "--local", "--unset", "cache.type"])
    write_tree(ws / "data" / "output", {"yes/a.wav": b"a" * 500})
    version_stage(ws, "data/output")
    assert Config(dvc_dir=str(ws / ".dvc"))["cache"].get("type")
    if chosen_type(ws) == "hardlink":
        assert (ws / "data" / "output" / "yes" / "a.wav").stat().st_nlink == 2


def chosen_type(ws: Path) -> str:
    return Config(dvc_dir=str(ws / ".dvc"))["cache"]["type"][0]


def write_stage(folder: Path, files: dict[str, bytes]) -> None:
    """As every stage writes its folder: a temp folder renamed over the old one."""
    with atomic_dir(folder) as tmp:
        write_tree(tmp, files)


def test_linked_output_reruns_and_checks_out_an_older_revision(ws: Path) -> None:
    if chosen_type(ws) != "hardlink":
        pytest.skip(f"this file system links with {chosen_type(ws)}, not hard links")
    output = ws / "data" / "output"
    first = {"yes/a.wav": b"a" * 500, "yes/b.wav": b"b" * 300, "manifest.csv": b"a,b\n"}
    write_stage(output, first)
    version_stage(ws, "data/output")
    git_commit(ws, ["data/output.dvc"], "first")
    clip = output / "yes" / "a.wav"
    object_a = cache_object(ws, sha_to_md5(clip))
    assert clip.stat().st_ino == object_a.stat().st_ino and clip.stat().st_nlink == 2
    assert clip.stat().st_mode & 0o222 == 0  # DVC protects linked files: read-only
    # a rerun replaces the read-only linked folder; the cached objects keep their bytes
    second = {**first, "yes/a.wav": b"A" * 700, "yes/c.wav": b"c" * 200}
    write_stage(output, second)
    assert object_a.read_bytes() == first["yes/a.wav"]
    version_stage(ws, "data/output")
    assert all(f.stat().st_nlink == 2 for f in output.rglob("*") if f.is_file())
    git_commit(ws, ["data/output.dvc"], "second")
    assert digest(output) == {k: hashlib.sha256(v).hexdigest() for k, v in second.items()}
    # `dvc checkout` of the older revision, and back
    git(ws, "checkout", "HEAD~1", "--", "data/output.dvc")
    run_dvc(ws, ["checkout", "data/output.dvc"])
    assert digest(output) == {k: hashlib.sha256(v).hexdigest() for k, v in first.items()}
    git(ws, "checkout", "HEAD", "--", "data/output.dvc")
    run_dvc(ws, ["checkout", "data/output.dvc"])
    assert digest(output) == {k: hashlib.sha256(v).hexdigest() for k, v in second.items()}
    # every file is linked again, also those a rerun rewrote with the same bytes
    assert {f.name: f.stat().st_nlink for f in output.rglob("*") if f.is_file()} == {
        Path(rel).name: 2 for rel in second
    }


def test_push_wipe_pull_restores_identical_files(ws: Path) -> None:
    write_tree(ws / "data" / "output", {f"yes/f{i}.wav": os.urandom(300 + i) for i in range(4)})
    expected = {stage: digest(ws / "data" / stage) for stage in ("input", "output")}
    for stage in expected:
        dvc_add(ws, f"data/{stage}")
    result = dvc_push(ws, ["data/input", "data/output.dvc"], jobs=2)
    assert result.files == 7 and result.seconds > 0  # files: the two .dir listings are not
    shutil.rmtree(ws / "data" / "input")
    shutil.rmtree(ws / "data" / "output")
    shutil.rmtree(ws / ".dvc" / "cache")
    pulled = dvc_pull(ws)
    assert pulled.files == 7  # as pushed: the listings are no files
    assert {stage: digest(ws / "data" / stage) for stage in expected} == expected


def test_git_commit_only_named_paths_without_identity(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a machine with no git identity at all, and a repo with no commits yet
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)
    shutil.rmtree(ws / ".git")
    git(ws, "init", "-q")
    git(ws, "add", ".dvc/config", ".gitignore")  # staged, not to be committed
    dvc_add(ws, "data/input")
    (ws / "unrelated.txt").write_text("staged by someone else\n")
    git(ws, "add", "unrelated.txt")
    sha = git_commit(ws, ["data/input.dvc"], "Version input")
    assert sha and sha == git(ws, "rev-parse", "HEAD")
    assert git(ws, "show", "--name-only", "--format=", "HEAD").splitlines() == ["data/input.dvc"]
    assert git(ws, "log", "-1", "--format=%an <%ae>") == "kwsops <kwsops@localhost>"
    staged = git(ws, "diff", "--cached", "--name-only").splitlines()
    assert {"unrelated.txt", ".dvc/config", ".gitignore"} <= set(staged)
    assert "data/input.dvc" not in staged
    assert git_commit(ws, ["data/input.dvc"], "again") is None

    # outside data/ DVC writes a .gitignore beside the .dvc file: it goes in the same commit
    write_tree(ws / "extra", {"notes/a.txt": b"a"})
    dvc_add(ws, "extra/notes")
    assert git_commit(ws, ["extra/notes.dvc"], "Notes")
    assert git(ws, "show", "--name-only", "--format=", "HEAD").splitlines() == [
        "extra/.gitignore",
        "extra/notes.dvc",
    ]

    (ws / "data" / "input" / "yes" / "spk4__yes_1.wav").write_bytes(os.urandom(100))
    dvc_add(ws, "data/input")
    second = git_commit(ws, [str(ws / "data" / "input.dvc")], "More input")
    assert second and second != sha
    assert git(ws, "rev-list", "--count", "HEAD") == "3"


def test_errors_are_one_line(ws: Path) -> None:
    with pytest.raises(VersioningError, match="does not exist") as missing:
        dvc_add(ws, "data/nope")
    with pytest.raises(VersioningError, match="no DVC remote named 'nowhere'") as remote:
        dvc_push(ws, ["data/input"], remote="nowhere")
    with pytest.raises(VersioningError) as dvc_failure:
        dvc_push(ws, ["data/input"])  # never added: DVC's own error, in one line
    for error in (missing, remote, dvc_failure):
        assert "\n" not in str(error.value) and "Traceback" not in str(error.value)
    assert "dvc push" in str(dvc_failure.value)


def models(ws: Path, weights: bytes) -> dict[str, str]:
    shutil.rmtree(ws / "data" / "models", ignore_errors=True)
    write_tree(
        ws / "data" / "models",
        {
            "batch_16/fold_0/model.safetensors": weights,
            "batch_16/metrics.json": b'{"acc": 0.5}',
            "batch_32/fold_0/model.safetensors": weights[::-1],
        },
    )
    return digest(ws / "data" / "models" / "batch_16")


def test_models_at_revision_from_cache_then_remote(ws: Path, tmp_path: Path) -> None:
    first = models(ws, os.urandom(2000))
    version_stage(ws, "data/models")
    rev1 = git_commit(ws, ["data/models.dvc"], "Models 1")
    second = models(ws, os.urandom(2000))
    version_stage(ws, "data/models")
    rev2 = git_commit(ws, ["data/models.dvc"], "Models 2")
    assert rev1 and rev2 and first != second

    out = tmp_path / "out"
    assert digest(models_at_revision(ws, rev1, "batch_16", out / "a")) == first
    whole = digest(models_at_revision(ws, "HEAD", "", out / "b"))
    assert {k.removeprefix("batch_16/"): v for k, v in whole.items()}.items() >= second.items()
    assert "batch_32/fold_0/model.safetensors" in whole
    shutil.rmtree(ws / ".dvc" / "cache")  # now only the remote has the data
    assert digest(models_at_revision(ws, f"{rev2}~1", "batch_16/", out / "a")) == first

    with pytest.raises(VersioningError, match="'no-such-rev' not found") as unknown:
        models_at_revision(ws, "no-such-rev", "batch_16", out / "c")
    with pytest.raises(VersioningError, match=r"batch_99.*\(tried .*remote 'local'\)") as path:
        models_at_revision(ws, rev1, "batch_99", out / "c")
    shutil.rmtree(ws / ".kwsops" / "dvc-remote")  # files gone everywhere
    with pytest.raises(VersioningError, match="data/models/batch_32") as gone:
        models_at_revision(ws, rev1, "batch_32", out / "c")
    for error in (unknown, path, gone):
        assert "\n" not in str(error.value)
    assert not (out / "c").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_core_modules_stay_free_of_luigi_and_textual() -> None:
    code = (
        "import sys, kwsops.versioning.dvc, kwsops.versioning.remote; "
        "print([m for m in ('luigi', 'textual') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pushed_count_is_files_not_folder_listings(ws: Path) -> None:
    (ws / "data" / "models").mkdir(parents=True)
    assert version_stage(ws, "data/models").push.files == 0  # DVC says "1 file pushed"
    write_tree(ws / "data" / "models", {"a.bin": os.urandom(64), "b/c.bin": os.urandom(65)})
    assert version_stage(ws, "data/models").push.files == 2
    assert version_stage(ws, "data/models").push.files == 0  # all there already
