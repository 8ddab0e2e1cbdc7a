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


def check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"--threshold {threshold:g} is not a probability; give 0 to 1")


def cmd_predict(args: argparse.Namespace) -> int:
    from kwsops.compare.predict import predict_files
    from kwsops.text import clean_text

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    check_threshold(args.threshold)
    spec, predictions = predict_files(
        workspace_of(args).require(), args.files, args.revision, args.threshold
    )
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


def detection_line(name: str, detection, as_json: bool) -> str:
    """One detection: ``file, start, end, label, probability`` tab-separated (names made one
    printable line), or a JSON object."""
    import json

    from kwsops.text import clean_text

    if as_json:
        return json.dumps({
            "file": name, "start": round(detection.start, 2), "end": round(detection.end, 2),
            "label": detection.label, "probability": round(detection.probability, 4),
        })  # fmt: skip
    return "\t".join([
        clean_text(name, 400), f"{detection.start:.2f}", f"{detection.end:.2f}",
        clean_text(detection.label), f"{detection.probability:.3f}",
    ])  # fmt: skip


def cmd_detect(args: argparse.Namespace) -> int:
    import os
    import sys

    from kwsops.audio.clip import AudioError
    from kwsops.audio.stream import PCM_RATE, file_blocks, pcm_blocks, resampled
    from kwsops.compare.detect import detect_blocks
    from kwsops.compare.predict import fetched_models, revision_threshold
    from kwsops.compare.scorer import load_scorer
    from kwsops.text import clean_text

    if args.files.count("-") > 1:
        raise ValueError("- (standard input) can be given once")
    check_threshold(args.threshold)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    failed = 0
    ws = workspace_of(args).require()
    with fetched_models(ws, args.revision) as (spec, paths):
        ensemble = load_scorer(ws.cache_dir, paths)  # onnxruntime: no torch in this process
        threshold = revision_threshold(paths) if args.threshold is None else args.threshold
        err.print(Text(f"revision {clean_text(spec)}, threshold {threshold:.3f}", style="dim"))
        rate = ensemble.settings.sample_rate
        for name in args.files:
            if name == "-":
                blocks = resampled(pcm_blocks(sys.stdin.fileno()), PCM_RATE, rate)
            else:
                blocks = file_blocks(name, rate)
            try:
                for detection in detect_blocks(ensemble, blocks, threshold):
                    sys.stdout.write(detection_line(name, detection, args.json) + "\n")
                    sys.stdout.flush()  # live input: each word as it is heard
            except BrokenPipeError:  # the reader left (`| head`): nothing more to say
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python's own advice)
                return exitcodes.OK
            except AudioError as exc:
                failed += 1
                err.print(Text.assemble(
                    f"{clean_text(name, 400)}: ", ("error: ", "red"), clean_text(exc.reason)
                ))  # fmt: skip
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
    p.add_argument(
        "--revision",
        help=f"{FORMS_HELP} (default: the production version, else the best of the last report)",
    )
    p.add_argument("--threshold", type=float, metavar="P",
                   help="the best word's probability to name it, 0 to 1; under it _unknown_ or "
                        "_silence_ (default: the revision's operating point)")  # fmt: skip
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("detect", help="find the words in long recordings, or live on stdin")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="recordings of any length (wav, ogg, opus, mp3, flac); - reads raw 16 kHz "
                        "16-bit mono PCM from stdin (arecord -f S16_LE -r 16000 -c 1)")  # fmt: skip
    p.add_argument("--revision", help=f"{FORMS_HELP} (default: best of the last report)")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="a word's probability to detect it, 0 to 1 (default: the revision's "
                        "operating point; lower finds more)")  # fmt: skip
    p.add_argument("--json", action="store_true",
                   help="JSON lines (file, start, end, label, probability) instead of tab-"
                        "separated lines")  # fmt: skip
    p.set_defaults(handler=cmd_detect)
