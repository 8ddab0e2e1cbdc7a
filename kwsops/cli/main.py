"""The `kwsops` command.

argparse rather than click: `--batch-sizes 16 32 64` needs nargs="+" options, which click does
not support. Heavy imports (luigi, torch, dvc) happen inside the commands, so `kwsops --help`
and a no-op `kwsops run` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from kwsops import exitcodes
from kwsops.cli import compare, ops, registry
from kwsops.cli.common import (
    add_hidden_run_options,
    add_run_options,
    console,
    enter_workspace,
    err,
    run_request,
    start,
    workspace_of,
)
from kwsops.runs.live import print_error
from kwsops.runs.request import RunRequest
from kwsops.secrets import scrub
from kwsops.text import rich_text


def cmd_init(args: argparse.Namespace) -> int:
    from rich.text import Text

    from kwsops.versioning.init import init_workspace

    ws = init_workspace(args.dir or args.workspace)
    console.print(Text("workspace ready at ").append(rich_text(ws.root, "bold", 4000)))
    console.print(
        Text("put recordings in ").append(rich_text(ws.input_dir, limit=4000))
        .append("/<label>/ or run `kwsops demo-data`"), soft_wrap=True,
    )  # fmt: skip
    return exitcodes.OK


def unknown_options(args: argparse.Namespace) -> dict:
    """The unknown-speech options of ``demo-data`` and ``demo``, for generate_demo_data."""
    options = {"unknown": args.unknown}
    if args.near_misses:
        options["near_misses"] = args.near_misses
    return options


def cmd_demo_data(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from kwsops.audio.demo_data import generate_demo_data

    ws = workspace_of(args).require()
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
            **unknown_options(args),
        )
    if not args.quiet:
        console.print(
            rich_text(f"{summary.total_files} recordings in {ws.input_dir} ({summary.seconds:.1f} s)",
                      limit=4000), soft_wrap=True,
        )  # fmt: skip
    return exitcodes.OK


def cmd_run(args: argparse.Namespace) -> int:
    return start(args, run_request(args, "run"))


def cmd_rerun(args: argparse.Namespace) -> int:
    """Repeat a past run: the same command and the parameters it resolved (params.json)."""
    from kwsops.cli.ops import find_run, read_params
    from kwsops.runs.request import RequestError

    ws = workspace_of(args).require()
    past = find_run(ws, args.run_ref)
    params = read_params(past)
    if not params:
        raise RequestError(f"run {past.run_id} has no readable {past.params.name} to repeat")
    request = RunRequest.from_params(
        params, run_id=args.run_id, origin=args.origin, rerun_of=past.run_id
    )
    if not args.quiet:
        shown = " ".join(replace(request, rerun_of=None).arguments()[:-2])
        console.print(rich_text(f"rerun of {past.run_id}: kwsops {shown}", "dim", 4000),
                      soft_wrap=True)  # fmt: skip
    return start(args, request)


def cmd_worker(args: argparse.Namespace) -> int:
    ws = workspace_of(args).require()
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

    # outside a workspace: the one-line error every command gives, not an empty console
    return tui_main(workspace_of(args).require().root)


class OneLineParser(argparse.ArgumentParser):
    """Refuses a command line in one line, as every other kwsops error is said (not argparse's
    usage block); `kwsops COMMAND --help` shows the usage."""

    def error(self, message: str) -> NoReturn:
        print_error(err, f"{message}; see `{self.prog} --help`")
        sys.exit(exitcodes.USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="kwsops",
        description="Train, version, track and compare keyword-spotting models.",
    )
    parser.add_argument(
        "-C", "--workspace", metavar="DIR", help="workspace folder (default: current folder)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="make a workspace (git, DVC, default remote, luigi.cfg)")
    p.add_argument(
        "dir",
        nargs="?",
        metavar="DIR",
        help="folder to make a workspace of (default: -C, else the current folder)",
    )
    p.set_defaults(handler=cmd_init)

    def demo_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--per-label",
            type=int,
            default=144,
            metavar="N",
            help="recordings per label (default: 144)",
        )
        p.add_argument(
            "--speakers", type=int, default=16, metavar="N", help="synthetic speakers (default: 16)"
        )
        p.add_argument(
            "--unknown",
            type=int,
            default=None,
            metavar="N",
            help="recordings of unknown speech: other words, near misses, sentences "
            "(default: twice --per-label; 0: none)",
        )
        p.add_argument(
            "--near-misses",
            type=lambda text: tuple(w.strip() for w in text.split(",") if w.strip()),
            default=None,
            metavar="WORDS",
            help="comma-separated near misses of the words to say as unknown speech "
            "(default: a built-in list, kwsops/audio/demo_texts.py)",
        )

    p = sub.add_parser("demo-data", help="synthesise the demo recordings into data/input")
    demo_options(p)
    p.add_argument(
        "--seed",
        dest="data_seed",
        type=int,
        default=42,
        metavar="N",
        help="seed of the voices and the phone formats (default: 42)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(handler=cmd_demo_data)

    p = sub.add_parser("run", help="run what is stale in the pipeline, then compare")
    add_run_options(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("rerun", help="repeat a run: its command and resolved parameters")
    p.add_argument("run_ref", nargs="?", default="failed", metavar="ID",
                   help="run id, a prefix of one, last, or failed: the newest that did not "
                        "finish ok (default)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="print nothing on success (cron)")
    add_hidden_run_options(p)
    p.set_defaults(handler=cmd_rerun)

    p = sub.add_parser("demo", help="init + demo-data + run, here or in DIR")
    p.add_argument("dir", nargs="?", metavar="DIR", help="the workspace to make (default: here)")
    demo_options(p)
    p.set_defaults(data_seed=42)
    add_run_options(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "worker", help="join the active run as an extra Luigi worker (central scheduler only)"
    )
    p.add_argument(
        "--scheduler-host",
        required=True,
        metavar="HOST",
        help="the luigid host the active run uses",
    )
    p.add_argument(
        "--scheduler-port", type=int, default=8082, metavar="PORT", help="its port (default: 8082)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes on this machine (default: 1)",
    )
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("tui", help="the operations console")
    p.set_defaults(handler=cmd_tui)
    compare.register(sub)
    ops.register(sub)
    registry.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.exiting = argv is None  # the process's own command: it ends when this returns
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print_error(err, "interrupted")
        return exitcodes.CANCELLED
    except Exception as exc:  # one line for the user; --debug for the traceback
        if args.debug:
            raise
        print_error(err, scrub(str(exc)) or type(exc).__name__)
        return int(getattr(exc, "exit_code", exitcodes.BAD_CONFIG))
