"""`kwsops validate`, `kwsops report` and `kwsops predict` (registered by kwsops.cli.main)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from kwsops import exitcodes
from kwsops.cli.common import add_run_options, run_request, start, workspace_of
from kwsops.compare.revisions import FORMS_HELP


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate alone (no training), through the runner: lock, run folder, events, exit code."""
    return start(args, run_request(args, "validate"))


def report_console(color: str, width: int | None) -> Console:
    """Colour when stdout is a terminal (or ``always``); plain text when piped or ``never``.
    Piped, it is 100 columns unless told (no trailing spaces either way)."""
    piped = Console().is_terminal is False
    width = width or (100 if piped else None)
    if color == "always":
        return Console(force_terminal=True, width=width, highlight=False)
    if color == "never":
        return Console(no_color=True, color_system=None, width=width, highlight=False)
    return Console(width=width, highlight=False)


def cmd_report(args: argparse.Namespace) -> int:
    from kwsops.compare.terminal import print_report

    path = Path(args.path) if args.path else workspace_of(args).require().comparison_report
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a comparison report (.md or .json)")
    if args.path and not path.exists():  # "no report yet" is for the workspace's own
        raise ValueError(f"{path}: no such file; give a comparison report (.md or .json)")
    print_report(path, report_console(args.color, args.width))
    return exitcodes.OK


def cmd_predict(args: argparse.Namespace) -> int:
    from kwsops.compare.predict import predict_files
    from kwsops.text import clean_text

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    spec, predictions = predict_files(workspace_of(args).require(), args.files, args.revision)
    err.print(Text(f"revision {clean_text(spec)}", style="dim"))
    failed = 0
    for result in predictions:
        name = clean_text(result.path, 400)
        if result.error:
            failed += 1
            err.print(
                Text.assemble((f"{name}: ", ""), ("error: ", "red"), clean_text(result.error))
            )
        else:
            label = clean_text(result.label or "")
            out.print(Text.assemble((label, "bold"), f"  {result.probability:.3f}  {name}"))
    return exitcodes.TASK_FAILED if failed else exitcodes.OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="compare model revisions into reports/comparison_versions.md (no training)"
    )
    add_run_options(p, training=False)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("report", help="print the comparison report in the terminal")
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="a comparison report, .md or .json (default: the workspace's "
                        "reports/comparison_versions.md)")  # fmt: skip
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour: auto (only on a terminal, default), always or never",
    )
    p.add_argument(
        "--width", type=int, metavar="N", help="columns (default: the terminal's; 100 when piped)"
    )
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("predict", help="classify recordings with a revision's fold ensemble")
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="recordings (wav, ogg, opus, mp3, flac)"
    )
    p.add_argument("--revision", help=f"{FORMS_HELP} (default: the production version, else "
                                      "the best of the last report)")
    p.set_defaults(handler=cmd_predict)
