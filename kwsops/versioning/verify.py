"""`kwsops verify`: every versioned file, and its DVC cache object, hashed against the
object's name; ``--repair`` mends what has a good copy (the file, the object, the remote's)."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kwsops.progress import ProgressFn, no_progress
from kwsops.versioning.dvc_config import cache_dir
from kwsops.versioning.errors import VersioningError
from kwsops.versioning.integrity import (
    CorruptionError,
    Tracked,
    file_md5,
    link_kind,
    object_intact,
    object_path,
    pointer,
    replace_object,
    tracked_files,
)


@dataclass
class Problem:
    path: str  # workspace-relative
    md5: str  # the name it should hash to
    why: str
    fixed: str = ""  # how --repair mended it ('' when not)


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def unrepaired(self) -> list[Problem]:
        return [p for p in self.problems if not p.fixed]


def versioned_dvc_files(ws_root: Path) -> list[Path]:
    return sorted(p for p in (Path(ws_root) / "data").glob("*.dvc") if p.is_file())


def verify(
    ws_root: Path, *, repair: bool = False, progress: ProgressFn = no_progress
) -> VerifyReport:
    """Hash every file the workspace's .dvc files version, and its cache object when that is
    another inode, against the object's name. With ``repair``: a damaged object is written
    anew from a good file, a damaged or missing file linked again from a good object, and
    what has no good copy here is dropped and fetched from the remote (`dvc pull`)."""
    ws_root, report = Path(ws_root), VerifyReport()
    cache = cache_dir(ws_root)
    items: list[tuple[Path, Tracked]] = []
    for dvc_file in versioned_dvc_files(ws_root):
        try:
            items += [(dvc_file, item) for item in tracked_files(ws_root, dvc_file)]
        except CorruptionError as exc:
            rel = dvc_file.relative_to(ws_root).as_posix()
            report.problems.append(Problem(rel, pointer(dvc_file), str(exc).split(": ", 1)[1]))
    fetch: set[Path] = set()
    for done, (dvc_file, item) in enumerate(items):
        progress(done, len(items), f"checking {item.path.relative_to(ws_root)}")
        report.checked += 1
        problem = _check(ws_root, cache, item, repair=repair, raw=dvc_file.name == RAW)
        if problem:
            report.problems.append(problem)
            if repair and not problem.fixed:
                fetch.add(dvc_file)
    if fetch:
        _fetch(ws_root, cache, sorted(fetch), report.unrepaired)
    progress(len(items), len(items), f"{report.checked} files checked")
    return report


RAW = "input.dvc"  # the user's recordings: never written by a repair, only their objects


def _fetch(ws_root: Path, cache: Path, dvc_files: list[Path], problems: list[Problem]) -> None:
    """Bring dropped objects back from the remote: `dvc fetch` for the recordings (the
    workspace's files are the user's), `dvc pull` (missing files only) for stage outputs."""
    from kwsops.versioning.runner import run_dvc

    for dvc_file in dvc_files:
        verb = "fetch" if dvc_file.name == RAW else "pull"
        with contextlib.suppress(VersioningError):  # what is still bad stays reported
            run_dvc(ws_root, [verb, dvc_file.relative_to(ws_root).as_posix()])
    for problem in problems:
        path = ws_root / problem.path
        if not object_intact(cache, problem.md5):
            continue
        if problem.path.startswith("data/input/"):
            problem.fixed = "cache object fetched from the remote (the file keeps its content)"
        elif path.is_file() and file_md5(path) == problem.md5:
            problem.fixed = "fetched from the remote"


def _check(ws_root: Path, cache: Path, item: Tracked, *, repair: bool, raw: bool) -> Problem | None:
    rel = item.path.relative_to(ws_root).as_posix()
    obj = object_path(cache, item.md5)
    try:
        file_ok = file_md5(item.path) == item.md5
    except OSError:
        file_ok = None  # missing
    same = file_ok is not None and obj.is_file() and os.path.samefile(obj, item.path)
    object_ok = file_ok if same else object_intact(cache, item.md5)
    if file_ok and object_ok:
        return None
    why = (
        "missing" if file_ok is None else "changed" if not file_ok else "ok"
    ) + " in the workspace"
    why += "; cache object " + (
        "missing" if not obj.is_file() else "damaged" if not object_ok else "ok"
    )
    problem = Problem(rel, item.md5, why)
    if not repair:
        return problem
    if file_ok and not object_ok:
        replace_object(cache, item.md5, item.path)
        problem.fixed = "cache object written anew from the file"
    elif object_ok and not file_ok and not raw:
        _link_into_place(ws_root, obj, item.path)
        problem.fixed = "file restored from the cache"
    elif not object_ok:  # no good copy here: the remote's comes back (:func:`_fetch`)
        with contextlib.suppress(FileNotFoundError):
            obj.unlink()  # a recording keeps its inode (and its new content)
        if not raw:
            with contextlib.suppress(FileNotFoundError):
                item.path.unlink()
    return problem


def _link_into_place(ws_root: Path, obj: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-verify")
    tmp.unlink(missing_ok=True)
    try:
        if not link_kind(ws_root).startswith("hardlink"):
            raise OSError
        os.link(obj, tmp)
    except OSError:
        shutil.copy2(obj, tmp)
    os.replace(tmp, path)
