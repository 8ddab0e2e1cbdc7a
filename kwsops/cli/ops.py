"""Operations subcommands: runs, cancel, gc, remote, pull, verify, clearml import."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys

from rich.text import Text

from kwsops import exitcodes
from kwsops.cli.common import console, err, workspace_of
from kwsops.runs.folder import RunPaths, effective_status, list_runs, read_status
from kwsops.runs.live import print_error, print_table
from kwsops.runs.lock import WorkspaceLock
from kwsops.secrets import register_secret
from kwsops.text import rich_text
from kwsops.workspace import Workspace


def _ws(args: argparse.Namespace) -> Workspace:
    return workspace_of(args).require()


def find_run(ws: Workspace, ref: str) -> RunPaths:
    """A run by id, id prefix, ``last``, or ``failed`` (the newest that did not end ok)."""
    runs = list_runs(ws.runs_dir)
    if not runs:
        raise LookupError(f"no runs yet in {ws.runs_dir}; start one with `kwsops run`")
    if ref in ("last", "latest"):
        return runs[0]
    if ref == "failed":
        ended = ("failed", "killed", "cancelled")
        found = next((r for r in runs if effective_status(read_status(r)) in ended), None)
        if found is None:
            raise LookupError("no failed, cancelled or killed run to repeat; name one by its id")
        return found
    matches = [run for run in runs if run.run_id.startswith(ref)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise LookupError(f"{what} matching {ref!r}; `kwsops runs` lists them")
    return matches[0]


def read_params(run: RunPaths) -> dict:
    """A run's params.json ({} when missing or unreadable)."""
    try:
        params = json.loads(run.params.read_text())
    except (OSError, ValueError):
        return {}
    return params if isinstance(params, dict) else {}


def cmd_runs(args: argparse.Namespace) -> int:
    from kwsops.runs.show import RUN_COLUMNS, run_summaries, sort_runs

    ws = _ws(args)
    if getattr(args, "runs_command", None) == "show":
        return cmd_runs_show(ws, args.run_ref)
    if getattr(args, "runs_command", None) == "compare":
        return cmd_runs_compare(ws, args.first, args.second)
    runs = run_summaries(list_runs(ws.runs_dir))
    if args.status:
        runs = [run for run in runs if run.status in args.status]
    runs = sort_runs(runs, args.sort, reverse=args.reverse)[: args.limit]
    rows = [[run.cell(key) for key, *_ in RUN_COLUMNS] for run in runs]
    print_table(
        console, f"runs in {ws.root}", [title for _, title, *_ in RUN_COLUMNS], rows,
        justify=[align for *_, align in RUN_COLUMNS], wrap=("Params", "Reason"), whole=("Run",),
        optional=("Started", "Command", "Best acc"),  # the run id says when it started
    )  # fmt: skip
    return exitcodes.OK


def cmd_runs_compare(ws: Workspace, first: str, second: str) -> int:
    from kwsops.runs.pages import load_run
    from kwsops.runs.show import compare_runs

    a, b = find_run(ws, first), find_run(ws, second)
    rows = compare_runs(load_run(a), load_run(b))
    print_table(console, f"run {a.run_id} vs {b.run_id} (differences only)",
                ("", a.run_id, b.run_id), rows, wrap=(a.run_id, b.run_id))  # fmt: skip
    return exitcodes.OK


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
        print_error(err, exc, style="yellow")
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
    """Check the server first: a URL that does not answer is never selected."""
    from kwsops.versioning.remote import add_webdav, check, webdav_remote

    ws = _ws(args)
    password = os.environ.get(args.password_env) if args.password_env else None
    if password is None and args.user and sys.stdin.isatty():
        password = getpass.getpass(f"WebDAV password for {args.user}: ")
    register_secret(password)
    remote = webdav_remote(args.url, args.user, password)
    result = check(remote)
    code = _print_check(result)
    if not result.ok and not args.no_check:
        raise RemoteSetupError(
            f"{remote.url} not selected ({result.reason}); the default remote is unchanged. "
            "Fix the URL or login, or add --no-check to select it anyway"
        )
    add_webdav(ws.root, args.url, args.user, password)
    console.print(
        rich_text(
            f"remote webdav selected: {remote.url} (credentials in .dvc/config.local)", limit=4000
        ),
        soft_wrap=True,
    )
    return exitcodes.OK if args.no_check else code  # --no-check asked for the selection: made


class RemoteSetupError(RuntimeError):
    exit_code = exitcodes.TASK_FAILED


def cmd_remote_local(args: argparse.Namespace) -> int:
    from kwsops.versioning.remote import select_local

    ws = _ws(args)
    remote = select_local(ws.root, ws.local_remote_dir)
    console.print(rich_text(f"remote local selected: {remote.url} (the workspace's own folder)",
                            limit=4000), soft_wrap=True)  # fmt: skip
    return exitcodes.OK


def cmd_remote_check(args: argparse.Namespace) -> int:
    from kwsops.versioning.remote import check_remote

    return _print_check(check_remote(_ws(args).root))


def _print_check(result) -> int:
    for name, passed, detail in result.checks:
        mark = Text("    ok", "green") if passed else Text("  FAIL", "red")
        console.print(Text.assemble(mark, f"  {name}: ", rich_text(detail, limit=2000)),
                      soft_wrap=True, highlight=False)  # fmt: skip
    return exitcodes.OK if result.ok else exitcodes.TASK_FAILED


def cmd_remote_show(args: argparse.Namespace) -> int:
    """Every remote, its whole URL (never cut: copy it from here), who logs in; no password."""
    from kwsops.versioning.remote import remotes

    rows = [
        [remote.name + (" (default)" if remote.default else ""), remote.kind, remote.user or "",
         "set" if remote.password else "", remote.url]
        for remote in remotes(_ws(args).root)
    ]  # fmt: skip
    print_table(console, "", ("name", "kind", "user", "password", "url"), rows, wrap=("url",))
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


def cmd_verify(args: argparse.Namespace) -> int:
    """Every versioned file and cache object hashed against its object's name; exit 1 while
    one is bad, naming each and the fix."""
    from kwsops.versioning.verify import verify

    ws = _ws(args)
    if args.repair and WorkspaceLock(ws.lock_file).is_held():
        print_error(err, "a run is active in this workspace; repair after it", style="yellow")
        return exitcodes.ALREADY_RUNNING
    with console.status("verifying the versioned data"):
        report = verify(ws.root, repair=args.repair)
    for problem in report.problems:
        how = f": {problem.fixed}" if problem.fixed else ""
        line = f"{'repaired' if problem.fixed else 'BAD'} {problem.path} ({problem.why}){how}"
        (console if problem.fixed else err).print(Text(line), soft_wrap=True, highlight=False)
    bad = report.unrepaired
    summary = f"{report.checked} versioned files checked, {len(bad)} bad"
    if report.problems and args.repair:
        summary += f", {len(report.problems) - len(bad)} repaired"
    if bad:
        fix = ("`kwsops verify --repair`, or `kwsops pull`" if not args.repair else
               "`kwsops pull` once the remote holds them, or `kwsops run` to compute stage "
               "outputs again")  # fmt: skip
        err.print(Text(f"{summary}: fix with {fix}"), soft_wrap=True, highlight=False)
        return exitcodes.TASK_FAILED
    console.print(Text(summary), soft_wrap=True, highlight=False)
    return exitcodes.OK


def cmd_clearml_import(args: argparse.Namespace) -> int:
    from kwsops.tracking.importer import import_offline_sessions

    imported = import_offline_sessions(_ws(args).root)
    console.print(f"{len(imported)} offline sessions imported")
    for task_id in imported:
        console.print(f"  {task_id}")
    return exitcodes.OK


def register(sub: argparse._SubParsersAction) -> None:
    from kwsops.runs.show import RUN_COLUMNS
    from kwsops.states import RUN_STATES

    p = sub.add_parser("runs", help="list runs; `runs show ID`, `runs compare ID ID`")
    p.add_argument(
        "--limit", type=int, default=20, metavar="N", help="show the newest N runs (default: 20)"
    )
    p.add_argument(
        "--status",
        nargs="+",
        choices=RUN_STATES,
        metavar="STATUS",
        help=f"only runs with this outcome: {', '.join(RUN_STATES)}",
    )
    p.add_argument("--sort", choices=[key for key, *_ in RUN_COLUMNS], default="run",
                   metavar="COLUMN", help="sort by: " + ", ".join(k for k, *_ in RUN_COLUMNS)
                   + " (default: run, newest first)")  # fmt: skip
    p.add_argument("--reverse", action="store_true", help="reverse the order")
    runs_sub = p.add_subparsers(dest="runs_command", metavar="")
    show = runs_sub.add_parser("show", help="print one run's report (ID, a prefix, or last)")
    show.add_argument("run_ref", metavar="ID", help="run id, a prefix of one, or last")
    both = runs_sub.add_parser("compare", help="two runs' params and results, side by side")
    both.add_argument("first", metavar="ID", help="run id, a prefix of one, or last")
    both.add_argument("second", metavar="ID", help="the other run")
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

    p = sub.add_parser("remote", help="DVC remotes: webdav URL, local, check, show")
    remote_sub = p.add_subparsers(dest="remote_command", required=True, metavar="ACTION")
    web = remote_sub.add_parser("webdav", help="add and select a WebDAV remote")
    web.add_argument("url", help="e.g. webdavs://host/webdav/kws/")
    web.add_argument("--user", help="login name (the password: --password-env, else a prompt)")
    web.add_argument(
        "--password-env",
        default="DVC_PASSWORD",
        metavar="VAR",
        help="read the password from this variable (else a hidden prompt)",
    )
    web.add_argument(
        "--no-check", action="store_true", help="select it even when the server does not answer now"
    )
    web.set_defaults(handler=cmd_remote_webdav)
    local = remote_sub.add_parser(
        "local", help="switch back to the workspace's own folder remote (.kwsops/dvc-remote)"
    )
    local.set_defaults(handler=cmd_remote_local)
    check = remote_sub.add_parser("check", help="server, credentials, folder, write access")
    check.set_defaults(handler=cmd_remote_check)
    show_remote = remote_sub.add_parser("show", help="the configured remotes (no passwords)")
    show_remote.set_defaults(handler=cmd_remote_show)

    p = sub.add_parser("pull", help="restore this revision's data from the DVC remote")
    p.set_defaults(handler=cmd_pull)

    p = sub.add_parser(
        "verify", help="hash every versioned file and cache object against its DVC name"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="mend what a good copy exists for: the file, the cache object, or the remote's",
    )
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("clearml", help="ClearML: import offline sessions to a server")
    clearml_sub = p.add_subparsers(dest="clearml_command", required=True, metavar="ACTION")
    imp = clearml_sub.add_parser("import", help="upload offline sessions once a server is set")
    imp.set_defaults(handler=cmd_clearml_import)
