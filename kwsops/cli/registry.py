"""`kwsops promote`, `kwsops registry` and `kwsops export` (registered by kwsops.cli.main)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from kwsops import exitcodes
from kwsops.cli.common import workspace_of
from kwsops.compare.revisions import FORMS_HELP
from kwsops.text import clean_text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _say_export(result) -> None:
    out.print(Text(f"{clean_text(result.path, 2000)}  ({result.format}, revision "
                   f"{clean_text(result.revision)})"))  # fmt: skip
    out.print(Text(f"checked on {result.clips} test clips: argmax equal on {result.argmax_agree}, "
                   f"largest probability difference {result.max_difference:.1e}"))  # fmt: skip
    out.print(Text(f"latency per clip, one thread: {result.latency_ms:.1f} ms "
                   f"(PyTorch: {result.torch_latency_ms:.1f} ms)"))  # fmt: skip
    out.print(Text(f"model card: {clean_text(result.card, 2000)}"))


def cmd_promote(args: argparse.Namespace) -> int:
    from kwsops.registry.promote import promote_revision
    from kwsops.runs.live import print_error
    from kwsops.runs.lock import AlreadyRunning

    ws = workspace_of(args).require()
    try:
        result = promote_revision(ws, args.revision, args.stage, args.version,
                                  export=not args.no_export)  # fmt: skip
    except AlreadyRunning as exc:
        print_error(err, exc, style="yellow")
        return exitcodes.ALREADY_RUNNING
    version = result.version
    if result.committed:
        err.print(Text(f"committed the workspace's models: {result.committed[:10]}", style="dim"))
    stage = f" ({result.stage})" if result.stage else ""
    out.print(Text(f"{version.ref}{stage}: {clean_text(version.revision, 400)}"))
    if result.export is not None:
        _say_export(result.export)
    if result.task_id:
        err.print(Text(f"ClearML task `{PROMOTE}`: {result.task_id}", style="dim"))
    if result.export_error:
        err.print(Text.assemble(("error: ", "red"), "promoted, but the export failed: ",
                                clean_text(result.export_error, 400)))  # fmt: skip
        return exitcodes.TASK_FAILED
    return exitcodes.OK


PROMOTE = "promote model"


def cmd_registry(args: argparse.Namespace) -> int:
    from kwsops.registry.listing import registry_rows
    from kwsops.runs.live import print_table
    from kwsops.versioning.tags import model_name

    ws = workspace_of(args).require()
    rows = registry_rows(ws)
    name = model_name(ws.root)
    if not rows:
        out.print(Text(f"no version of {name} yet: `kwsops promote REVISION` registers one"))
        return exitcodes.OK
    print_table(out, f"model {name}",
                ["version", "stages", "accuracy", "miss rate", "promoted by", "when", "revision"],
                [[r.version, r.stages, r.accuracy, r.miss_rate, r.promoted_by, r.promoted_at,
                  r.revision] for r in rows], justify=["left", "left", "right", "right"])  # fmt: skip
    return exitcodes.OK


def cmd_export(args: argparse.Namespace) -> int:
    from kwsops.registry.export import export_revision

    ws = workspace_of(args).require()
    output = Path(args.output) if args.output else None
    _say_export(export_revision(ws, args.revision, args.format, output))
    return exitcodes.OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("promote", help="register a revision as a model version and give it a stage")
    p.add_argument("revision", metavar="REVISION", help=FORMS_HELP)
    p.add_argument("--stage", default="production",
                   help="the stage to assign (default: production)")  # fmt: skip
    p.add_argument("--version", metavar="X.Y.Z",
                   help="the version (default: the next minor one, v1.0.0 first)")  # fmt: skip
    p.add_argument("--no-export", action="store_true",
                   help="only the git tags: no ONNX file, card or ClearML task")  # fmt: skip
    p.set_defaults(handler=cmd_promote)

    p = sub.add_parser("registry", help="the model's versions, stages, scores and promoters")
    p.set_defaults(handler=cmd_registry)

    p = sub.add_parser("export", help="one ONNX file: front end and fold ensemble, checked")
    p.add_argument("revision", nargs="?", metavar="REVISION",
                   help=f"{FORMS_HELP} (default: the production version, else the best)")  # fmt: skip
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                   help="onnx (default) or torchscript")  # fmt: skip
    p.add_argument("--output", metavar="PATH",
                   help="the file to write (default: exports/<name>-<version>.onnx)")  # fmt: skip
    p.set_defaults(handler=cmd_export)
