"""Run the DAG for `kwsops run`: one run at a time, a run folder, a log, an honest exit code."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields

import luigi
import luigi.configuration
from luigi.execution_summary import LuigiStatusCode
from rich.console import Console

from kwsops import exitcodes
from kwsops.console import LiveRunView, summary_table, task_label
from kwsops.runreport import write_run_report
from kwsops.runs import (
    AlreadyRunning,
    EventLog,
    RunPaths,
    WorkspaceLock,
    create_run,
    new_run_id,
    read_events,
    write_status,
)
from kwsops.runstate import RunState
from kwsops.secrets import ScrubbingFilter, register_config_secrets
from kwsops.workspace import WORKSPACE_ENV, Workspace, WorkspaceError
from tasks.events import RUN_DIR_ENV

log = logging.getLogger("kwsops")


class Cancelled(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT. A KeyboardInterrupt, because that is the
    one exception Luigi lets out of a running task instead of recording it and going on."""


@dataclass
class RunRequest:
    target: str = "Validate"
    batch_sizes: list[int] | None = None
    epochs: int | None = None
    folds: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    revisions: list[str] | None = None
    fail_below: float | None = None
    standalone: bool = False  # Validate alone, without the stages before it
    workers: int | None = None
    scheduler_host: str | None = None
    scheduler_port: int | None = None
    run_id: str | None = None
    origin: str = "cli"
    extra: dict = field(default_factory=dict)

    def params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}


CONFIG_OVERRIDES = {
    "epochs": ("Train", "epochs"),
    "folds": ("Train", "folds"),
    "learning_rate": ("Train", "learning_rate"),
    "seed": ("Train", "seed"),
}


def apply_overrides(request: RunRequest) -> None:
    """CLI flags become Luigi config values, exactly as if written in luigi.cfg."""
    config = luigi.configuration.get_config()

    def put(section: str, option: str, value: object) -> None:
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, option, str(value))

    for attr, (section, option) in CONFIG_OVERRIDES.items():
        value = getattr(request, attr)
        if value is not None:
            put(section, option, value)
    put("core", "no_configure_logging", "true")
    if request.scheduler_host:
        # wait for tasks another worker is running instead of exiting with them pending
        put("worker", "keep_alive", "true")


def build_target(request: RunRequest) -> luigi.Task:
    import tasks

    cls = getattr(tasks, request.target)
    kwargs: dict = {}
    if request.batch_sizes:
        kwargs["batch_sizes"] = [int(b) for b in request.batch_sizes]
    if request.target == "Validate":
        if request.revisions:
            kwargs["revisions"] = list(request.revisions)
        if request.fail_below is not None:
            kwargs["fail_below"] = request.fail_below
        if request.standalone:
            kwargs["standalone"] = True
    return cls(**kwargs)


def effective_workers(request: RunRequest) -> int:
    if request.workers:
        return request.workers
    return int(luigi.configuration.get_config().get("core", "workers", "1"))


def luigi_build_args(request: RunRequest) -> dict:
    """Only what the user asked for: everything else comes from luigi.cfg [core], so a
    workspace whose luigi.cfg names a central scheduler uses it without flags."""
    args: dict = {"detailed_summary": True}
    if request.workers:
        args["workers"] = request.workers
    if request.scheduler_host:
        args.update(
            local_scheduler=False,
            scheduler_host=request.scheduler_host,
            scheduler_port=request.scheduler_port or 8082,
        )
    return args


def preload_for_fork(ws: Workspace) -> None:
    """Import the heavy libraries once, before Luigi forks its workers."""
    import torch  # noqa: F401

    from kwsops.tracking import preload

    preload(ws.root)


def attach_log(paths: RunPaths) -> logging.Handler:
    handler = logging.FileHandler(paths.log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def exit_code_for(result: object | None, state: RunState) -> int:
    if result is None:
        return exitcodes.TASK_FAILED
    status = getattr(result, "status", None)
    if status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY):
        return exitcodes.OK
    if any("QualityGate" in t.error for t in state.failed()):
        return exitcodes.QUALITY_GATE
    return exitcodes.TASK_FAILED


class CancelHandler:
    """SIGTERM/SIGINT abort the run once; a second signal while it unwinds is ignored."""

    def __init__(self) -> None:
        self.requested: str | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested is None:
            self.requested = signal.Signals(signum).name
            raise Cancelled(self.requested)


def run_pipeline(
    ws: Workspace, request: RunRequest, *, quiet: bool = False, console: Console | None = None
) -> int:
    console = console or Console(stderr=False)
    err = Console(stderr=True)
    try:
        ws.require()
    except WorkspaceError as exc:
        err.print(f"[red]kwsops:[/] {exc}")
        return exitcodes.BAD_CONFIG
    lock = WorkspaceLock(ws.lock_file)
    run_id = request.run_id or new_run_id()
    try:
        lock.acquire(run_id, origin=request.origin)
    except AlreadyRunning as exc:
        err.print(f"[yellow]kwsops:[/] {exc}")
        return exitcodes.ALREADY_RUNNING
    try:
        paths = create_run(ws.runs_dir, request.params(), request.origin, run_id=run_id)
        return _run_locked(ws, request, paths, quiet=quiet, console=console, err=err)
    finally:
        lock.release()


def _run_locked(
    ws: Workspace,
    request: RunRequest,
    paths: RunPaths,
    *,
    quiet: bool,
    console: Console,
    err: Console,
) -> int:
    os.environ[RUN_DIR_ENV] = str(paths.root)
    os.environ[WORKSPACE_ENV] = str(ws.root)
    workers = effective_workers(request)
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("KWSOPS_TORCH_THREADS", str(threads))
        preload_for_fork(ws)
    register_config_secrets(ws.root / ".dvc" / "config.local")
    handler = attach_log(paths)
    events = EventLog(paths.events)
    started = time.time()
    events.emit(
        "run_started",
        run_id=paths.run_id,
        params=request.params(),
        pid=os.getpid(),
        origin=request.origin,
    )
    cancel = CancelHandler()
    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
    result = None
    status = "failed"
    live = (
        LiveRunView(paths.events, console) if not quiet and console.is_terminal else nullcontext()
    )
    try:
        apply_overrides(request)
        target = build_target(request)
        build_args = luigi_build_args(request)
        with live:
            result = luigi.build([target], **build_args)
        code = exit_code_for(result, RunState().apply_all(read_events(paths.events).events))
        status = "ok" if code == exitcodes.OK else "failed"
    except Cancelled as exc:
        code, status = exitcodes.CANCELLED, "cancelled"
        log.warning("run cancelled by %s", exc)
        for task in RunState().apply_all(read_events(paths.events).events).ordered():
            if task.status == "running":
                events.emit(
                    "task_failed",
                    task=task.task,
                    family=task.family,
                    duration=round(time.time() - (task.started or started), 3),
                    error=f"cancelled by {exc}",
                )
    except Exception as exc:  # a scheduling or configuration error, not a task failure
        code, status = exitcodes.BAD_CONFIG, "failed"
        log.exception("run could not start")
        err.print(f"[red]kwsops:[/] {exc}")
    finally:
        for sig, handler_fn in previous.items():
            signal.signal(sig, handler_fn)
    duration = round(time.time() - started, 3)
    events.emit("run_finished", status=status, exit_code=code, duration=duration)
    state = RunState().apply_all(read_events(paths.events).events)
    best = next(
        (
            t.summary.get("accuracy")
            for t in state.tasks.values()
            if t.family == "Validate" and t.summary.get("accuracy") is not None
        ),
        None,
    )
    write_status(
        paths,
        status=status,
        exit_code=code,
        finished=time.time(),
        duration=duration,
        best_accuracy=best,
    )
    write_run_report(paths)
    logging.getLogger().removeHandler(handler)
    handler.close()
    _report(state, paths, code, quiet=quiet, console=console, err=err)
    return code


def _report(
    state: RunState, paths: RunPaths, code: int, *, quiet: bool, console: Console, err: Console
) -> None:
    title = f"run {paths.run_id}: {exitcodes.MEANINGS.get(code, code)}"
    if code == exitcodes.OK:
        if not quiet:
            console.print(summary_table(state, title))
        return
    err.print(summary_table(state, title))
    for task in state.failed():
        err.print(f"[red]failed:[/] {task_label(task)}: {task.error}", highlight=False)
    err.print(f"log: {paths.log}")


def join_run(
    ws: Workspace,
    scheduler_host: str,
    scheduler_port: int,
    *,
    workers: int = 1,
    console: Console | None = None,
) -> int:
    """An extra worker for the active run (this or another machine sharing the workspace's
    storage): same params, same task ids, so the central scheduler hands it the tasks no
    other worker has taken. It takes no lock: the run it joins holds it."""
    err = Console(stderr=True)
    lock = WorkspaceLock(ws.lock_file)
    holder = lock.holder() if lock.is_held() else {}
    paths = RunPaths(ws.runs_dir / str(holder.get("run_id", "")))
    if not holder or not paths.params.exists():
        err.print(
            f"[red]kwsops:[/] no active run in {ws.root} to join; start one with "
            "`kwsops run --scheduler-host HOST` first"
        )
        return exitcodes.BAD_CONFIG
    saved = json.loads(paths.params.read_text())
    known = {f.name for f in fields(RunRequest)}
    request = RunRequest(**{k: v for k, v in saved.items() if k in known})
    request.scheduler_host, request.scheduler_port = scheduler_host, scheduler_port
    request.workers = workers
    os.environ[RUN_DIR_ENV] = str(paths.root)
    os.environ[WORKSPACE_ENV] = str(ws.root)
    handler = attach_log(paths)
    try:
        apply_overrides(request)
        result = luigi.build([build_target(request)], **luigi_build_args(request))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    state = RunState().apply_all(read_events(paths.events).events)
    (console or Console()).print(f"worker done for run {paths.run_id}")
    return exit_code_for(result, state)
