"""The workspace's merged DVC configuration (.dvc/config + config.local), read with DVC's API,
and the cache's link type (one copy of the data on disk where the file system allows)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from kwsops.versioning.errors import RemoteError

log = logging.getLogger("kwsops")
# DVC's `add` links a file into the cache in place only when the first type is hardlink; a
# reflink (copy on write: btrfs, XFS, APFS) is a copy that shares the blocks, never read-only
REFLINK, HARDLINK, COPY = "reflink,copy", "hardlink,copy", "copy"


def read_config(ws_root: Path) -> Any:
    from dvc.config import Config, ConfigError

    try:
        return Config(dvc_dir=str(Path(ws_root) / ".dvc"))
    except ConfigError as exc:
        raise RemoteError(f"{Path(ws_root) / '.dvc'}: {str(exc).splitlines()[0]}") from None


def known_secrets(ws_root: Path) -> list[str]:
    """Every password or token in the merged DVC config, to scrub them from messages."""
    try:
        remotes = read_config(ws_root)["remote"]
    except Exception:  # an unreadable config: nothing we could scrub
        return []
    keys = ("password", "token", "secret_access_key")
    return [str(o[k]) for o in remotes.values() for k in keys if o.get(k)]


def cache_dir(ws_root: Path) -> Path:
    return Path(read_config(ws_root)["cache"].get("dir") or Path(ws_root) / ".dvc" / "cache")


def probe_link_type(data_dir: Path, cache: Path) -> str:
    """The cheapest way this file system puts a workspace file into the cache: a reflink, a
    hard link (same file system, no reflink: ext4), else a copy (another file system)."""
    from dvc_objects.fs.system import reflink

    made = [folder for folder in (data_dir, cache) if not folder.exists()]
    for folder in (data_dir, cache):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        with (
            tempfile.TemporaryDirectory(prefix=".kwsops-link-probe-", dir=data_dir) as src_dir,
            tempfile.TemporaryDirectory(prefix=".kwsops-link-probe-", dir=cache) as dst_dir,
        ):
            src, dst = Path(src_dir) / "probe", Path(dst_dir)
            src.write_bytes(b"kwsops link probe\n")
            for name, link in ((REFLINK, reflink), (HARDLINK, os.link)):
                try:
                    link(src, dst / name)
                    return name
                except OSError:
                    continue
        return COPY
    finally:
        for folder in reversed(made):  # as they were: DVC makes its cache when it needs one
            with contextlib.suppress(OSError):
                folder.rmdir()


def ensure_cache_links(ws_root: Path) -> str | None:
    """Unless the workspace's DVC config names a ``cache.type`` (the user's choice wins; `copy`
    opts out), set the one the file system allows in .dvc/config.local (a machine's fact, not
    the repository's). Returns the type set now, None when one was configured already."""
    from dvc.config import Config

    ws_root = Path(ws_root)
    if read_config(ws_root)["cache"].get("type"):
        return None
    chosen = probe_link_type(ws_root / "data", cache_dir(ws_root))
    with Config(dvc_dir=str(ws_root / ".dvc")).edit("local") as local:
        local["cache"]["type"] = chosen
    log.info(
        "DVC cache: cache.type %s set in .dvc/config.local (data stored once where the file "
        "system allows; `dvc config --local cache.type copy` opts out)",
        chosen,
    )
    return chosen
