"""Operations subcommands: runs, cancel, gc, remote, pull, clearml import."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys

from rich.table import Table
from rich.text import Text

from kwsops import exitcodes, states
from kwsops.cli.common import console, workspace_of
from kwsops.runs.folder import RunPaths, effective_status, list_runs, read_status
from kwsops.runs.lock import WorkspaceLock
from kwsops.secrets import register_secret
from kwsops.workspace import Workspace


def _ws(args: argparse.Namespace) -> Workspace:
    return workspace_of(args).require()


def find_run(ws: Workspace, ref: str) -> RunPaths:
    runs = list_runs(ws.runs_dir)
    if not runs:
        raise LookupError(f"no runs yet in {ws.runs_dir}; start one with `kwsops run`")
    if ref in ("last", "latest"):
        return runs[0]
    matches = [run for run in runs if run.run_id.startswith(ref)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise LookupError(f"{what} matching {ref!r}; `kwsops runs` lists them")
    return matches[0]


def cmd_runs(args: argparse.Namespace) -> int:
    ws = _ws(args)
    if getattr(args, "run_ref", None):
        return cmd_runs_show(ws, args.run_ref)
    table = Table(title=f"runs in {ws.root}", title_justify="left")
    table.add_column("run (start time)", no_wrap=True)
    for column in ("origin", "status", "exit", "duration", "best acc"):
        table.add_column(column, justify="right" if column in ("duration", "best acc") else "left")
    for run in list_runs(ws.runs_dir)[: args.limit]:
        status = read_status(run) or {}
        state = effective_status(status)
        params = _params(run)
        best = status.get("best_accuracy")
        table.add_row(
            run.run_id,
            str(params.get("origin", "")),
            Text(state, style=states.style(state)),
            str(status.get("exit_code", "")),
            f"{status['duration']:.0f} s" if status.get("duration") else "",
            f"{best:.3f}" if isinstance(best, (int, float)) else "",
        )
    console.print(table)
    return exitcodes.OK


def _params(run: RunPaths) -> dict:
    import json

    try:
        return json.loads(run.params.read_text())
    except (OSError, ValueError):
        return {}


def cmd_runs_show(ws: Workspace, ref: str) -> int:
    from kwsops.runs.pages import load_run, write_run_report
    from kwsops.runs.show import render_run

    run = find_run(ws, ref)
    if not run.report_md.exists() and effective_status(read_status(run)) != "running":
        write_run_report(run)  # e.g. a killed run: rebuild the report from its events
    state, status, params = load_run(run)
    render_run(console, run, state, status, params)
    return exitcodes.OK


def cmd_cancel(args: argparse.Namespace) -> int:
    ws = _ws(args)
    lock = WorkspaceLock(ws.lock_file)
    if not lock.is_held():
        console.print("no run is active in this workspace")
        return exitcodes.OK
    holder = lock.holder()
    pid = int(holder.get("pid", 0))
    if not pid:
        raise LookupError(f"the active run's pid is unknown; see {ws.lock_file}")
    os.kill(pid, signal.SIGTERM)
    console.print(f"asked run {holder.get('run_id', '?')} (pid {pid}) to stop")
    return exitcodes.OK


def cmd_gc(args: argparse.Namespace) -> int:
    from kwsops.runs.lock import AlreadyRunning
    from kwsops.runs.retention import collect_garbage

    ws = _ws(args)
    try:
        report = collect_garbage(ws, keep_runs=args.keep_runs, dvc=args.dvc, dry_run=args.dry_run)
    except AlreadyRunning as exc:
        console.print(Text(f"kwsops: {exc}"), soft_wrap=True)
        return exitcodes.ALREADY_RUNNING
    verb = "would remove" if report.dry_run else "removed"
    for item in report.removals:
        console.print(Text(f"{verb} {item.path.relative_to(ws.root)}: {item.why}"), soft_wrap=True)
    summary = f"{verb} {len(report.removals)} items, {report.size / 1e6:.1f} MB"
    if args.dvc:
        remotes = "".join(f", {n} from remote '{name}'" for name, n in report.dvc_remotes.items())
        summary += f"; DVC: {report.dvc_cache} objects from the cache{remotes}"
    console.print(Text(summary), soft_wrap=True)
    return exitcodes.OK


def cmd_remote_webdav(args: argparse.Namespace) -> int:
    from kwsops.versioning.remote import add_webdav, check_remote

    ws = _ws(args)
    password = os.environ.get(args.password_env) if args.password_env else None
    if password is None and args.user and sys.stdin.isatty():
        password = getpass.getpass(f"WebDAV password for {args.user}: ")
    register_secret(password)
    add_webdav(ws.root, args.url, args.user, password)
    console.print(f"remote [bold]webdav[/] selected: {args.url} (credentials in .dvc/config.local)")
    return _print_check(check_remote(ws.root))


def cmd_remote_check(args: argparse.Namespace) -> int:
    from kwsops.versioning.remote import check_remote

    return _print_check(check_remote(_ws(args).root))


def _print_check(result) -> int:
    for name, passed, detail in result.checks:
        mark = "[green]ok[/]" if passed else "[red]FAIL[/]"
        console.print(f"{mark:>16}  {name}: {detail}", highlight=False)
    return exitcodes.OK if result.ok else exitcodes.TASK_FAILED


def cmd_remote_show(args: argparse.Namespace) -> int:
    from kwsops.versioning.remote import remotes

    table = Table("name", "kind", "url", "user", "default", "password")
    for remote in remotes(_ws(args).root):
        table.add_row(
            remote.name,
            remote.kind,
            remote.url,
            remote.user or "",
            "yes" if remote.default else "",
            "set" if remote.password else "",
        )
    console.print(table)
    return exitcodes.OK


def cmd_pull(args: argparse.Namespace) -> int:
    from kwsops.versioning.dvc import dvc_pull
    from kwsops.versioning.remote import configure_from_env

    ws = _ws(args)
    configure_from_env(ws.root)
    with console.status("dvc pull: fetching this revision's data"):
        result = dvc_pull(ws.root)
    console.print(f"{result.files} files fetched in {result.seconds:.1f} s")
    return exitcodes.OK


def cmd_clearml_import(args: argparse.Namespace) -> int:
    from kwsops.tracking.importer import import_offline_sessions

    imported = import_offline_sessions(_ws(args).root)
    console.print(f"{len(imported)} offline sessions imported")
    for task_id in imported:
        console.print(f"  {task_id}")
    return exitcodes.OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list runs, or show one: `kwsops runs show ID`")
    p.add_argument("--limit", type=int, default=20)
    runs_sub = p.add_subparsers(dest="runs_command", metavar="")
    show = runs_sub.add_parser("show", help="print one run's report (ID, a prefix, or last)")
    show.add_argument("run_ref", metavar="ID")
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("cancel", help="stop the active run (it records itself as cancelled)")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser(
        "gc", help="remove old runs, imported ClearML sessions and (--dvc) unused DVC objects"
    )
    p.add_argument(
        "--keep-runs", type=int, default=50, metavar="N", help="newest runs to keep (50)"
    )
    p.add_argument(
        "--dvc",
        action="store_true",
        help="also remove DVC objects no git commit uses (cache and the local remote)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    p.set_defaults(handler=cmd_gc)

    p = sub.add_parser("remote", help="DVC remotes: webdav URL, check, show")
    remote_sub = p.add_subparsers(dest="remote_command", required=True, metavar="ACTION")
    web = remote_sub.add_parser("webdav", help="add and select a WebDAV remote")
    web.add_argument("url", help="e.g. webdavs://host/webdav/kws/")
    web.add_argument("--user")
    web.add_argument(
        "--password-env",
        default="DVC_PASSWORD",
        metavar="VAR",
        help="read the password from this variable (else a hidden prompt)",
    )
    web.set_defaults(handler=cmd_remote_webdav)
    check = remote_sub.add_parser("check", help="server, credentials, folder, write access")
    check.set_defaults(handler=cmd_remote_check)
    show_remote = remote_sub.add_parser("show", help="the configured remotes (no passwords)")
    show_remote.set_defaults(handler=cmd_remote_show)

    p = sub.add_parser("pull", help="restore this revision's data from the DVC remote")
    p.set_defaults(handler=cmd_pull)

    p = sub.add_parser("clearml", help="ClearML: import offline sessions to a server")
    clearml_sub = p.add_subparsers(dest="clearml_command", required=True, metavar="ACTION")
    imp = clearml_sub.add_parser("import", help="upload offline sessions once a server is set")
    imp.set_defaults(handler=cmd_clearml_import)
