"""A run's request (:class:`kwsops.runs.request.RunRequest`) in Luigi's terms: config values,
the target task, build arguments; and the request resolved against luigi.cfg and checked
before anything is recorded (:func:`prepare`)."""

from __future__ import annotations

import re
from dataclasses import replace

import luigi
import luigi.configuration
from luigi.execution_summary import LuigiStatusCode

from kwsops.compare.revisions import RevisionError, default_specs, parse_spec, resolve_revisions
from kwsops.pipeline.validate import ValidationInputError, require_test_split
from kwsops.runs.request import RequestError, RunRequest
from kwsops.workspace import Workspace

__all__ = ["RunRequest", "prepare"]


CONFIG_OVERRIDES = {
    "epochs": ("Train", "epochs"),
    "folds": ("Train", "folds"),
    "learning_rate": ("Train", "learning_rate"),
    "seed": ("Train", "seed"),
    "precision": ("Train", "precision"),
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
    if request.fold_tasks:
        put("Train", "stacked", "false")
    put("core", "no_configure_logging", "true")
    if request.scheduler_host:
        # wait for tasks another worker is running instead of exiting with them pending
        put("worker", "keep_alive", "true")


def build_target(request: RunRequest) -> luigi.Task:
    import tasks

    cls = getattr(tasks, request.target)
    kwargs: dict = {}
    if request.batch_sizes and "batch_sizes" in dict(cls.get_params()):
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
    return int(luigi.configuration.get_config().getint("core", "workers", 1))


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
    """Import the heavy libraries once, before Luigi forks its workers: each training task
    would otherwise pay ~10 s of CPU for them (measured on the 2-core machine), once per fold
    with ``--fold-tasks``."""
    import sklearn.model_selection  # noqa: F401  (the folds)
    import torch
    import torch._inductor  # noqa: F401  (torch.use_deterministic_algorithms imports it)

    from kwsops.tracking.tracker import preload

    preload(ws.root)


def build_succeeded(result: object | None) -> bool:
    """Whether ``luigi.build(..., detailed_summary=True)`` finished everything it was asked."""
    status = getattr(result, "status", None)
    return status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)


def resolve(request: RunRequest) -> RunRequest:
    """``request`` with every parameter the run will use: the flags, else luigi.cfg, else the
    tasks' defaults. This is what params.json records and what a rerun repeats."""
    import tasks

    apply_overrides(request)
    try:
        target = build_target(request)
        validate = target if isinstance(target, tasks.Validate) else tasks.Validate()
        if isinstance(target, tasks.VersionModels):  # its own batch sizes, not Validate's
            sizes = [int(size) for size in target.batch_sizes]
        else:
            sizes = validate.sizes()
        train = tasks.Train(batch_size=sizes[0] if sizes else 1)
        revisions = [str(spec) for spec in validate.revisions]
        resolved: dict = {"revisions": revisions, "fail_below": float(validate.fail_below)}
        if not (request.standalone and revisions):  # else the batch sizes name nothing
            resolved["batch_sizes"] = sizes
        if not request.standalone:
            resolved.update(train.training_params(), workers=effective_workers(request))
            if not train.stacked:  # [Train] stacked = false: recorded as the flag would be
                resolved["fold_tasks"] = True
    except (ValueError, TypeError, luigi.parameter.ParameterException) as exc:
        raise RequestError(config_error(exc)) from None
    return replace(request, **resolved)


def config_error(exc: BaseException) -> str:
    """One line for a luigi.cfg value Luigi could not read: ``luigi.cfg [Train] precision: half
    is not a valid choice from ...`` (Luigi's own message names the task, not the option)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    found = re.search(r"^(\w+)\[.*\]: Error when parsing the default value of '(\w+)'", first)
    if found and exc.__cause__ is not None:
        return f"luigi.cfg [{found[1]}] {found[2]}: {exc.__cause__}"
    return f"luigi.cfg: {first}"


def moves_with_training(spec: str) -> bool:
    """A revision a run's own training changes: ``last:N`` (a new `train model` task) and a
    git revision named by a ref (``HEAD``, ``HEAD~1``, a branch; VersionModels commits), not
    by a sha. In a training run they are resolved when Validate runs, not before."""
    kind, parts = parse_spec(spec)
    return kind == "last" or (kind == "git" and not re.fullmatch(r"[0-9a-f]{7,40}", parts["rev"]))


def check_revisions(ws: Workspace, request: RunRequest) -> None:
    """Every revision named must exist now, except what this run's training makes: the new
    models and the revisions that move with it. RequestError naming the first that does not;
    validate-only, also a missing test split."""
    if request.standalone:
        try:
            require_test_split(ws)
        except ValidationInputError as exc:
            raise RequestError(str(exc)) from None
        specs = list(request.revisions or []) or default_specs(request.batch_sizes or [])
    else:
        trained = set(default_specs(request.batch_sizes or []))
        specs = [
            s for s in request.revisions or [] if s not in trained and not moves_with_training(s)
        ]
    if not specs:
        return
    try:
        resolved = resolve_revisions(ws, specs, list(request.batch_sizes or []))
    except RevisionError as exc:
        raise RequestError(str(exc)) from None
    unknown = [r for r in resolved if r.kind == "clearml" and r.origin.get("mode") == "online"]
    if unknown:
        from kwsops.tracking.setup import tracking_mode

        if tracking_mode(ws.root) == "offline":
            raise RequestError(
                f"revision {unknown[0].requested}: ClearML task {unknown[0].task_id} is not in "
                "this workspace's offline sessions and no ClearML server is configured"
            )


def prepare(ws: Workspace, request: RunRequest) -> RunRequest:
    """The resolved request, checked: every value in range, every revision found. Raises
    RequestError (exit code 4) before anything is recorded as a run."""
    request.check()
    resolved = resolve(request).check()
    check_revisions(ws, resolved)
    return resolved
