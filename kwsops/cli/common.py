"""What every `kwsops` subcommand shares: the workspace it works in, the consoles, and the
flags and start of a run (`kwsops run`, `validate`, `rerun`, `demo`)."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from kwsops.compare.revisions import FORMS_HELP
from kwsops.config import PRECISIONS
from kwsops.runs.request import LIMITS, RunRequest
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
        batch_sizes=args.batch_sizes,
        epochs=getattr(args, "epochs", None),
        folds=getattr(args, "folds", None),
        learning_rate=getattr(args, "learning_rate", None),
        seed=getattr(args, "seed", None),
        precision=getattr(args, "precision", None),
        revisions=args.revisions,
        fail_below=args.fail_below,
        workers=getattr(args, "workers", None),
        fold_tasks=getattr(args, "fold_tasks", None) or None,
        scheduler_host=getattr(args, "scheduler_host", None),
        scheduler_port=getattr(args, "scheduler_port", None),
        run_id=args.run_id,
        origin=args.origin,
        rerun_of=getattr(args, "rerun_of", None),
    )


def start(args: argparse.Namespace, request: RunRequest) -> int:
    """Run ``request`` in the workspace of ``args`` (lock, run folder, events, exit code)."""
    ws = workspace_of(args).require()
    enter_workspace(ws)
    from tasks.runner import run_pipeline

    return run_pipeline(ws, request, quiet=args.quiet, console=console,
                        exiting=getattr(args, "exiting", False))  # fmt: skip


def _range(name: str) -> str:
    return LIMITS[name].describe()


def add_run_options(parser: argparse.ArgumentParser, *, training: bool = True) -> None:
    group = parser.add_argument_group("pipeline parameters (default: luigi.cfg)")
    group.add_argument(
        "--batch-sizes", type=int, nargs="+", metavar="N",
        help=f"batch sizes to train and compare, e.g. 16 32 64 (each {_range('batch_sizes')})",
    )  # fmt: skip
    if training:
        group.add_argument("--epochs", type=int, metavar="N",
                           help=f"most epochs per fold; early stopping may end one sooner "
                                f"({_range('epochs')})")  # fmt: skip
        group.add_argument(
            "--folds",
            type=int,
            metavar="K",
            help=f"cross-validation folds per batch size ({_range('folds')})",
        )
        group.add_argument(
            "--learning-rate",
            type=float,
            metavar="LR",
            help=f"peak of the one-cycle schedule ({_range('learning_rate')})",
        )
        group.add_argument(
            "--seed",
            type=int,
            metavar="N",
            help=f"seed of the folds and the training ({_range('seed')})",
        )
        group.add_argument(
            "--precision",
            choices=PRECISIONS,
            help="compute precision of the training steps (auto: bfloat16 on a CPU with "
            "bfloat16 arithmetic, else float32)",
        )
        group.add_argument(
            "--fold-tasks",
            action="store_true",
            default=None,
            help="train each fold as its own TrainFold task, for luigid workers on several "
            "machines (default: the folds of a batch size train together, [Train] stacked)",
        )
    group.add_argument(
        "--revisions", nargs="+", metavar="REV",
        help=f"revisions to compare{' besides the new models' if training else ''}: {FORMS_HELP}",
    )  # fmt: skip
    group.add_argument(
        "--fail-below",
        type=float,
        metavar="ACC",
        help="exit 5 when the best accuracy is under ACC (0 to 1)",
    )
    how = parser.add_argument_group("how to run")
    how.add_argument("--quiet", action="store_true", help="print nothing on success (cron)")
    if training:
        how.add_argument("--workers", type=int, metavar="N",
                         help="Luigi worker processes, each training one fold at a time "
                              "(default: luigi.cfg [core] workers)")  # fmt: skip
        how.add_argument(
            "--scheduler-host",
            metavar="HOST",
            help="use the luigid central scheduler on HOST (default: local)",
        )
        how.add_argument(
            "--scheduler-port",
            type=int,
            default=None,
            metavar="PORT",
            help="luigid's port (default: 8082)",
        )
        how.add_argument("--target", default="Validate", help=argparse.SUPPRESS)
    add_hidden_run_options(how)


def add_hidden_run_options(group: argparse._ArgumentGroup) -> None:
    """What the console passes to the runs it starts."""
    group.add_argument("--run-id", help=argparse.SUPPRESS)
    group.add_argument("--origin", default="cli", help=argparse.SUPPRESS)
    group.add_argument("--rerun-of", help=argparse.SUPPRESS)
