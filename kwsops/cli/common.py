"""What every `kwsops` subcommand shares: the workspace it works in, the consoles, and the
flags and start of a run (`kwsops run`, `validate`, `rerun`, `demo`)."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from kwsops.compare.revisions import FORMS_HELP
from kwsops.params import REQUEST, TRAINING, ParamError
from kwsops.runs.request import RunRequest
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


def run_request(args: argparse.Namespace, command: str) -> RunRequest:
    """The request the flags of `kwsops run` / `kwsops validate` / `kwsops demo` describe."""
    return RunRequest(
        command=command,
        target=getattr(args, "target", "Validate"),
        **{name: getattr(args, name, None) for name in REQUEST},
        fold_tasks=getattr(args, "fold_tasks", None) or None,
        scheduler_host=getattr(args, "scheduler_host", None),
        run_id=args.run_id,
        origin=args.origin,
        rerun_of=getattr(args, "rerun_of", None),
    )


def start(args: argparse.Namespace, request: RunRequest) -> int:
    """Run ``request`` in the workspace of ``args`` (lock, run folder, events, exit code)."""
    request.check()  # a bad flag is named first, wherever the command is run
    ws = workspace_of(args).require()
    enter_workspace(ws)
    from tasks.runner import run_pipeline

    return run_pipeline(ws, request, quiet=args.quiet, console=console,
                        exiting=getattr(args, "exiting", False))  # fmt: skip


def flag_type(name: str):
    """An argparse type for one declared parameter: its value, or the word as typed when it is
    not one, for the request check to refuse with the range (exit 4, as for a value out of
    range) rather than argparse with its usage block."""
    param = REQUEST[name]

    def parse(text: str):
        try:
            return param.parse_item(text)
        except ParamError:
            return text

    return parse


def add_param_flag(group: argparse._ArgumentGroup, name: str, help: str | None = None) -> None:
    """``--name`` for the declared parameter ``name``: its type, range, choices and help."""
    param = REQUEST[name]
    options: dict = {"metavar": param.metavar, "help": help or param.help,
                     "type": flag_type(name)}  # fmt: skip
    if param.kind is list:
        options["nargs"] = "+"
    if param.choices:
        options["metavar"] = "{" + ",".join(param.choices) + "}"
    elif "{range}" in options["help"]:
        options["help"] = options["help"].replace("{range}", param.describe())
    elif param.number_kind is not None:
        options["help"] += f" ({param.describe()})"
    group.add_argument(param.flag, **options)


def add_run_options(parser: argparse.ArgumentParser, *, training: bool = True) -> None:
    group = parser.add_argument_group("pipeline parameters (default: luigi.cfg)")
    add_param_flag(group, "batch_sizes")
    if training:
        for name in TRAINING:
            add_param_flag(group, name)
        group.add_argument(
            "--fold-tasks",
            action="store_true",
            default=None,
            help="train each fold as its own TrainFold task, for luigid workers on several "
            "machines (default: the folds of a batch size train together, [Train] stacked)",
        )
    later = (
        " besides the new models; a ref the run's own commit moves (HEAD, HEAD~1, a branch) is "
        "resolved when the comparison runs, anything else is checked before training"
        if training
        else ""
    )
    add_param_flag(group, "revisions", f"revisions to compare{later}: {FORMS_HELP}")
    add_param_flag(group, "fail_below")
    how = parser.add_argument_group("how to run")
    how.add_argument("--quiet", action="store_true", help="print nothing on success (cron)")
    if training:
        add_param_flag(how, "workers", REQUEST["workers"].help + " ({range}; default: "
                       "luigi.cfg [core] workers)")  # fmt: skip
        how.add_argument(
            "--scheduler-host",
            metavar="HOST",
            help="use the luigid central scheduler on HOST (default: local)",
        )
        add_param_flag(how, "scheduler_port", "luigid's port ({range}; default: 8082)")
        how.add_argument("--target", default="Validate", help=argparse.SUPPRESS)
    add_hidden_run_options(how)


def add_hidden_run_options(group: argparse._ArgumentGroup) -> None:
    """What the console passes to the runs it starts."""
    group.add_argument("--run-id", help=argparse.SUPPRESS)
    group.add_argument("--origin", default="cli", help=argparse.SUPPRESS)
    group.add_argument("--rerun-of", help=argparse.SUPPRESS)
