"""`kwsops validate`, `kwsops report` and `kwsops predict` (registered by kwsops.cli.main)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.text import Text

from kwsops import exitcodes
from kwsops.cli.common import enter_workspace, workspace_of
from kwsops.compare.revisions import FORMS_HELP


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate alone (no training), through the runner: lock, run folder, events, exit code."""
    ws = workspace_of(args)
    enter_workspace(ws)
    from tasks.request import RunRequest
    from tasks.runner import run_pipeline

    request = RunRequest(
        target="Validate",
        batch_sizes=args.batch_sizes,
        revisions=args.revisions,
        fail_below=args.fail_below,
        standalone=True,
        run_id=args.run_id,
        origin=args.origin,
    )
    return run_pipeline(ws, request, quiet=args.quiet, console=Console())


def report_console(color: str, width: int | None) -> Console:
    """Colour when stdout is a terminal (or ``always``); plain text when piped or ``never``."""
    if color == "always":
        return Console(force_terminal=True, width=width, highlight=False)
    if color == "never":
        return Console(no_color=True, color_system=None, width=width, highlight=False)
    return Console(width=width, highlight=False)


def cmd_report(args: argparse.Namespace) -> int:
    from kwsops.compare.terminal import print_report

    path = args.path or workspace_of(args).comparison_report
    print_report(path, report_console(args.color, args.width))
    return exitcodes.OK


def cmd_predict(args: argparse.Namespace) -> int:
    from kwsops.compare.predict import predict_files
    from kwsops.text import clean_text

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    spec, predictions = predict_files(workspace_of(args), args.files, args.revision)
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
    p.add_argument("--revisions", nargs="+", metavar="REV", help=FORMS_HELP)
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", metavar="N",
        help="default revisions: workspace:batch_<N> for each (default: luigi.cfg)",
    )  # fmt: skip
    p.add_argument(
        "--fail-below", type=float, metavar="ACC", help="exit 5 when best accuracy < ACC"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success (cron)")
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--origin", default="cli", help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("report", help="print the comparison report in the terminal")
    p.add_argument("path", nargs="?", help="default: reports/comparison_versions.md")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--width", type=int, help="columns (default: the terminal's, 80 when piped)")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("predict", help="classify recordings with a revision's fold ensemble")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--revision", help=f"{FORMS_HELP} (default: best of the last report)")
    p.set_defaults(handler=cmd_predict)
