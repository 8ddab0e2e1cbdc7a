"""What every `kwsops` subcommand shares: the workspace it works in, and the consoles."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from kwsops.workspace import Workspace

console = Console()
err = Console(stderr=True)


def workspace_of(args: argparse.Namespace) -> Workspace:
    """The workspace named by ``-C DIR``, else the current folder (or $KWSOPS_WORKSPACE)."""
    return Workspace.at(getattr(args, "workspace", None))


def enter_workspace(ws: Workspace) -> None:
    """Work from the workspace root: Luigi reads ./luigi.cfg when it first needs a setting.

    No LUIGI_CONFIG_PATH: it would leak into every process started from here (a `luigi`
    run in another workspace would read this workspace's settings)."""
    os.chdir(ws.root)
    config = sys.modules.get("luigi.configuration")
    if config is not None:  # a second command in this process: read this workspace's file
        config.get_config().reload()
