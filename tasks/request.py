"""What a run asks for, and how it becomes Luigi config, a target and build arguments."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import luigi
import luigi.configuration
from luigi.execution_summary import LuigiStatusCode

from kwsops.workspace import Workspace


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

    from kwsops.tracking.tracker import preload

    preload(ws.root)


def build_succeeded(result: object | None) -> bool:
    """Whether ``luigi.build(..., detailed_summary=True)`` finished everything it was asked."""
    status = getattr(result, "status", None)
    return status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
