"""The `kwsops` command.

argparse rather than click: `--batch-sizes 16 32 64` needs nargs="+" options, which click does
not support. Heavy imports (luigi, torch, dvc) happen inside the commands, so `kwsops --help`
and a no-op `kwsops run` stay fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kwsops import exitcodes
from kwsops.cli import compare, ops
from kwsops.cli.common import console, enter_workspace, err, workspace_of
from kwsops.compare.revisions import FORMS_HELP
from kwsops.secrets import scrub


def cmd_init(args: argparse.Namespace) -> int:
    from kwsops.versioning.init import init_workspace

    ws = init_workspace(args.dir or args.workspace)
    console.print(f"workspace ready at [bold]{ws.root}[/]")
    console.print(f"put recordings in {ws.input_dir}/<label>/ or run `kwsops demo-data`")
    return exitcodes.OK


def cmd_demo_data(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from kwsops.audio.demo_data import generate_demo_data

    ws = workspace_of(args)
    with Progress(console=console, transient=True, disable=args.quiet) as progress:
        bar = progress.add_task("synthesising demo recordings", total=None)

        def update(done: int, total: int, detail: str = "") -> None:
            progress.update(bar, completed=done, total=total)

        summary = generate_demo_data(
            ws.input_dir,
            per_label=args.per_label,
            speakers=args.speakers,
            seed=args.data_seed,
            progress=update,
        )
    if not args.quiet:
        console.print(
            f"{summary.total_files} recordings in {ws.input_dir} ({summary.seconds:.1f} s)"
        )
    return exitcodes.OK


def _run_request(args: argparse.Namespace, target: str):
    from tasks.request import RunRequest

    return RunRequest(
        target=target,
        batch_sizes=args.batch_sizes,
        epochs=args.epochs,
        folds=args.folds,
        learning_rate=args.learning_rate,
        seed=args.seed,
        revisions=getattr(args, "revisions", None),
        fail_below=getattr(args, "fail_below", None),
        workers=args.workers,
        scheduler_host=args.scheduler_host,
        scheduler_port=args.scheduler_port,
        run_id=args.run_id,
        origin=args.origin,
    )


def cmd_run(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    enter_workspace(ws)
    from tasks.runner import run_pipeline

    return run_pipeline(ws, _run_request(args, args.target), quiet=args.quiet, console=console)


def cmd_worker(args: argparse.Namespace) -> int:
    ws = workspace_of(args)
    enter_workspace(ws)
    from tasks.join import join_run

    return join_run(ws, args.scheduler_host, args.scheduler_port, workers=args.workers)


def cmd_demo(args: argparse.Namespace) -> int:
    args.dir = args.dir or args.workspace
    cmd_init(args)
    args.workspace = str(Path(args.dir or ".").resolve())
    cmd_demo_data(args)
    return cmd_run(args)


def cmd_tui(args: argparse.Namespace) -> int:
    from kwsops.tui.app import main as tui_main

    tui_main(workspace_of(args).root)
    return exitcodes.OK


def add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pipeline parameters (defaults from luigi.cfg)")
    group.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="batch sizes to train, e.g. 16 32 64",
    )
    group.add_argument("--epochs", type=int, help="maximum epochs per fold (early stopping)")
    group.add_argument("--folds", type=int, help="cross-validation folds")
    group.add_argument("--learning-rate", type=float)
    group.add_argument("--seed", type=int)
    group.add_argument(
        "--revisions",
        nargs="+",
        metavar="REV",
        help=f"revisions to compare besides the new models: {FORMS_HELP}",
    )
    group.add_argument(
        "--fail-below", type=float, metavar="ACC", help="exit 5 when the best accuracy < ACC"
    )
    run = parser.add_argument_group("how to run")
    run.add_argument("--quiet", action="store_true", help="print nothing on success (cron)")
    run.add_argument("--workers", type=int, help="parallel Luigi workers (luigi.cfg [core])")
    run.add_argument("--scheduler-host", help="use a luigid central scheduler on this host")
    run.add_argument("--scheduler-port", type=int, default=None)
    run.add_argument("--run-id", help=argparse.SUPPRESS)
    run.add_argument("--origin", default="cli", help=argparse.SUPPRESS)
    run.add_argument("--target", default="Validate", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kwsops",
        description="Train, version, track and compare keyword-spotting models.",
    )
    parser.add_argument(
        "-C", "--workspace", metavar="DIR", help="workspace folder (default: current folder)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="make a workspace (git, DVC, default remote, luigi.cfg)")
    p.add_argument("dir", nargs="?")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("demo-data", help="synthesise the demo recordings into data/input")
    p.add_argument("--per-label", type=int, default=144)
    p.add_argument("--speakers", type=int, default=16)
    p.add_argument("--seed", dest="data_seed", type=int, default=42)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=cmd_demo_data)

    p = sub.add_parser("run", help="run what is stale in the pipeline")
    add_run_options(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("demo", help="init + demo-data + run, here or in DIR")
    p.add_argument("dir", nargs="?")
    p.add_argument("--per-label", type=int, default=144)
    p.add_argument("--speakers", type=int, default=16)
    p.set_defaults(data_seed=42)
    add_run_options(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "worker", help="join the active run as an extra Luigi worker (central scheduler only)"
    )
    p.add_argument("--scheduler-host", required=True)
    p.add_argument("--scheduler-port", type=int, default=8082)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("tui", help="the operations console")
    p.set_defaults(handler=cmd_tui)
    compare.register(sub)
    ops.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        err.print("kwsops: interrupted")
        return exitcodes.CANCELLED
    except Exception as exc:  # one line for the user; --debug for the traceback
        if args.debug:
            raise
        err.print(f"[red]kwsops:[/] {scrub(str(exc)) or type(exc).__name__}", highlight=False)
        return exitcodes.BAD_CONFIG
