"""Git revisions of the workspace: commit the .dvc files of a training, read what a commit holds."""

from __future__ import annotations

from pathlib import Path

from kwsops.text import commit_message
from kwsops.versioning.runner import relative, run_git

_FALLBACK_IDENT = (("user.name", "kwsops"), ("user.email", "kwsops@localhost"))
_IDENT_VARS = ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT")


def git_commit(ws_root: Path, paths: list[str], message: str) -> str | None:
    """Commit only ``paths`` (and the DVC .gitignore beside each .dvc); new sha, None if same."""
    ws_root = Path(ws_root)
    named = [relative(ws_root, path) for path in paths]
    ignores = [(Path(p).parent / ".gitignore").as_posix() for p in named if p.endswith(".dvc")]
    named += [p for p in dict.fromkeys(ignores) if (ws_root / p).is_file() and p not in named]
    run_git(ws_root, ["add", "-A", "--", *named])
    if run_git(ws_root, ["rev-parse", "-q", "--verify", "HEAD"], check=False).returncode == 0:
        changed = run_git(ws_root, ["diff", "--cached", "--name-only", "HEAD", "--", *named]).stdout
    else:  # no commit yet: everything staged is new
        changed = run_git(ws_root, ["ls-files", "--", *named]).stdout
    if not changed.split():
        return None
    ident: list[str] = []  # only what git cannot find itself (config, GIT_AUTHOR_* ...)
    if any(run_git(ws_root, ["var", v], check=False).returncode for v in _IDENT_VARS):
        for key, value in _FALLBACK_IDENT:
            if run_git(ws_root, ["config", key], check=False).returncode:
                ident += ["-c", f"{key}={value}"]
    run_git(
        ws_root,
        [*ident, "commit", "-q", "-m", commit_message(message), "--", *changed.splitlines()],
    )
    return run_git(ws_root, ["rev-parse", "HEAD"]).stdout.strip()


def uncommitted(ws_root: Path, paths: list[str]) -> list[str]:
    """Which of ``paths`` differ from HEAD (modified, staged, new or deleted)."""
    named = [relative(Path(ws_root), path) for path in paths]
    status = run_git(ws_root, ["status", "--porcelain", "--untracked-files=all", "--", *named])
    return [line[3:] for line in status.stdout.splitlines() if line.strip()]


def resolve_commit(ws_root: Path, rev: str) -> str | None:
    """The full sha of commit ``rev``, or None when git does not know it."""
    found = run_git(ws_root, ["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def has_file(ws_root: Path, rev: str, path: str) -> bool:
    """Whether ``path`` is committed at ``rev``."""
    return run_git(ws_root, ["cat-file", "-e", f"{rev}:{path}"], check=False).returncode == 0
