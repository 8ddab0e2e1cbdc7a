"""The workspace's merged DVC configuration (.dvc/config + config.local), read with DVC's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kwsops.versioning.errors import RemoteError


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
    return [str(o[k]) for o in remotes.values() for k in ("password", "token") if o.get(k)]
