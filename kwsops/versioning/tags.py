"""The model registry as GTO git tags, written and read with the ``gto`` library.

A version is ``<name>@v<semver>`` on the commit that holds its models, a stage assignment
``<name>#<stage>#<n>`` (GTO's "full" form, so the history of a stage is kept); ``gto show`` and
DVC Studio read them. GTO allows one version per commit, but one training commit holds the
models of every batch size: a second revision of the same commit gets a commit of its own with
the same tree (``git commit-tree``, on no branch, kept alive by its tag). The revision a version
stands for, and its scores at promotion, are the registration's message: ``kwsops <json>``.

Nothing here touches the network; ``git push --tags`` is the user's. ``gto`` is imported inside
the functions (it costs ~0.3 s).
"""

from __future__ import annotations

import configparser
import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kwsops.versioning.runner import run_git

DEFAULT_MODEL_NAME = "kws"
PRODUCTION = "production"
MESSAGE_PREFIX = "kwsops "
# GTO's own rule for names (gto.constants.ARTIFACT_NAME), without its folder prefixes
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-/]*[a-z0-9])?$")
_STAGE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
_FALLBACK_AUTHOR = ("kwsops", "kwsops@localhost")


class RegistryError(ValueError):
    """A name, stage or version the registry refuses; the message says what to use (exit 4)."""


@dataclass(frozen=True)
class RegistryVersion:
    """One registered version, as gto reads it back."""

    name: str
    version: str  # v1.2.0
    commit: str  # the commit the version tag is on
    revision: str  # the revision spec it stands for: git:<sha>:batch_32 or clearml:<id>
    stages: tuple[str, ...]  # the stages it holds now
    author: str
    created: datetime | None
    promoted_by: str = ""  # who assigned its latest stage, and when
    promoted_at: datetime | None = None
    scores: dict = field(default_factory=dict)  # accuracy, miss_rate, ... at promotion

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def model_name(ws_root: Path) -> str:
    """The model's registry name: ``[registry] model_name`` in luigi.cfg, else ``kws``."""
    parser = configparser.ConfigParser()
    path = Path(ws_root) / "luigi.cfg"
    try:
        parser.read(path)
        name = parser.get("registry", "model_name", fallback=DEFAULT_MODEL_NAME).strip()
    except configparser.Error:
        name = DEFAULT_MODEL_NAME
    return check_name(name or DEFAULT_MODEL_NAME, f"{path} [registry] model_name")


def check_name(name: str, where: str = "model name") -> str:
    if not _NAME.match(name):
        raise RegistryError(
            f"{where} {name!r} is not a GTO name: use lower-case letters, digits and '-' "
            "(e.g. kws)"
        )
    return name


def check_stage(stage: str) -> str:
    if not _STAGE.match(stage):
        raise RegistryError(
            f"stage {stage!r} is not a GTO stage: use lower-case letters, digits and '-' "
            "(e.g. production, staging)"
        )
    return stage


def check_version(version: str) -> str:
    """``1.2.0`` or ``v1.2.0`` -> ``v1.2.0``."""
    if not _VERSION.match(version):
        raise RegistryError(f"version {version!r} is not semantic: use X.Y.Z (e.g. 1.2.0)")
    return version if version.startswith("v") else f"v{version}"


def _author(ws_root: Path) -> tuple[str, str]:
    """The git author identity, or kwsops' fallback when git has none (as git_commit does)."""
    found = run_git(ws_root, ["var", "GIT_AUTHOR_IDENT"], check=False)
    match = re.match(r"^(.*) <(.*)> \d+ [+-]\d{4}$", found.stdout.strip())
    return (match.group(1), match.group(2)) if found.returncode == 0 and match else _FALLBACK_AUTHOR


def _message(revision: str, scores: dict) -> str:
    return MESSAGE_PREFIX + json.dumps({"revision": revision, **scores}, sort_keys=True)


def _parse_message(message: str) -> dict:
    text = (message or "").strip()
    if not text.startswith(MESSAGE_PREFIX):
        return {}
    try:
        data = json.loads(text[len(MESSAGE_PREFIX) :])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _own_commit(ws_root: Path, commit: str, message: str) -> str:
    """A commit with ``commit``'s tree and ``commit`` as parent, on no branch."""
    name, email = _author(ws_root)
    ident = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
    made = run_git(ws_root, [*ident, "commit-tree", f"{commit}^{{tree}}", "-p", commit, "-m", message])
    return made.stdout.strip()


@contextlib.contextmanager
def _dated_after_last_tag(ws_root: Path, name: str) -> Iterator[None]:
    """GTO orders a stage's assignments by their tag's time, in whole seconds, and the tag
    writer (dulwich, through scmrepo) takes the clock's: a tag made in the same second as the
    last one would tie with it, so wait for the next second (at most one, once per promote)."""
    found = run_git(ws_root, ["for-each-ref", "--format=%(taggerdate:unix)",
                              f"refs/tags/{name}@*", f"refs/tags/{name}#*"], check=False)  # fmt: skip
    last = max((int(t) for t in found.stdout.split() if t.isdigit()), default=0)
    while int(time.time()) <= last:
        time.sleep(0.05)
    yield


def read_versions(ws_root: Path, name: str | None = None) -> list[RegistryVersion]:
    """Every active version of the model, newest first, through ``gto.api.show``."""
    from gto import api

    name = name or model_name(ws_root)
    try:
        shown = api.show(str(ws_root), name, registered_only=True)
    except Exception:  # gto's "not found" for a model never promoted, a repo without HEAD
        return []
    versions = []
    for row in shown:
        registration = (row.get("registrations") or [{}])[-1]
        data = _parse_message(registration.get("message", ""))
        stages = [s for s in row.get("stages") or [] if s.get("is_active", True)]
        last = max(
            (a for s in stages for a in s.get("assignments") or []),
            key=lambda a: a["created_at"],
            default=registration,
        )
        versions.append(
            RegistryVersion(
                name=name,
                version=row["version"],
                commit=row["commit_hexsha"],
                revision=str(data.get("revision", "")),
                stages=tuple(s["stage"] for s in stages),
                author=str(registration.get("author", "")),
                created=registration.get("created_at"),
                promoted_by=str(last.get("author", "")),
                promoted_at=last.get("created_at"),
                scores={k: v for k, v in data.items() if k != "revision"},
            )
        )
    return versions


def has_stage(ws_root: Path, stage: str = PRODUCTION, name: str | None = None) -> bool:
    """Whether any tag ever assigned ``stage`` (one git call, no gto): a cheap first look."""
    name = name or model_name(ws_root)
    found = run_git(ws_root, ["for-each-ref", "--count=1", "--format=%(refname)",
                              f"refs/tags/{name}#{stage}#*"], check=False)  # fmt: skip
    return found.returncode == 0 and bool(found.stdout.strip())


def in_stage(ws_root: Path, stage: str = PRODUCTION, name: str | None = None) -> RegistryVersion | None:
    """The version that holds ``stage`` now, or None: the latest assignment wins, as ``gto show``
    and DVC Studio read it (``gto.api.find_versions_in_stage`` orders by semver instead, so a
    rollback to an older version would not show there)."""
    for version in read_versions(ws_root, name):
        if stage in version.stages:
            return version
    return None


def find_version(ws_root: Path, ref: str) -> RegistryVersion:
    """``kws@v1.2.0`` or ``kws#production`` -> its version; RegistryError when none."""
    if "#" in ref:
        name, stage = ref.split("#", 1)
        found = in_stage(ws_root, stage, check_name(name))
        if found is None:
            raise RegistryError(f"no version of {name} is in stage {stage!r}; `kwsops registry` lists them")
        return found
    name, _, version = ref.partition("@")
    version = check_version(version)
    for candidate in read_versions(ws_root, check_name(name)):
        if candidate.version == version:
            return candidate
    raise RegistryError(f"{name}@{version} is not registered; `kwsops registry` lists the versions")


def promote(
    ws_root: Path,
    commit: str,
    revision: str,
    *,
    stage: str | None = PRODUCTION,
    version: str | None = None,
    scores: dict | None = None,
    name: str | None = None,
) -> RegistryVersion:
    """Register ``revision`` (held by ``commit``) as a version, unless it is one already, and
    assign it ``stage``. A new version without ``version`` is the next minor one (v1.0.0 first)."""
    from gto import api
    from gto.versions import SemVer

    ws_root = Path(ws_root)
    name = name or model_name(ws_root)
    stage = check_stage(stage) if stage else None
    version = check_version(version) if version else None
    existing = read_versions(ws_root, name)
    same = next((v for v in existing if v.revision == revision), None)
    if same is not None and version and version != same.version:
        raise RegistryError(
            f"{revision} is registered already as {same.ref}; promote that version or leave "
            "out --version"
        )
    if version and any(v.version == version for v in existing) and same is None:
        raise RegistryError(f"{name}@{version} is registered already for another revision")
    author, email = _author(ws_root)
    if same is None:
        if version is None:
            latest = max((SemVer(v.version) for v in existing), default=None)
            version = latest.bump_minor().version if latest else "v1.0.0"
        message = _message(revision, scores or {})
        target = commit
        if any(v.commit == commit for v in existing):  # GTO: one version per commit
            target = _own_commit(ws_root, commit, f"{name} {version}: {revision}")
        with _dated_after_last_tag(ws_root, name):
            api.register(str(ws_root), name, target, version=version, message=message,
                         author=author, author_email=email)  # fmt: skip
    else:
        version = same.version
    if stage:
        with _dated_after_last_tag(ws_root, name):
            api.assign(str(ws_root), name, stage, version=version,
                       message=f"{name}#{stage}: {revision}", simple=False, force=True,
                       author=author, author_email=email)  # fmt: skip
    return next(v for v in read_versions(ws_root, name) if v.version == version)
