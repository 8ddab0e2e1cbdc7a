"""luigi.cfg as a run reads it, and the run's request (:class:`kwsops.runs.request.RunRequest`)
in Luigi's terms: the file checked against the declared parameters (:mod:`kwsops.params`),
the request's flags written over it, the request resolved against it, the target task found
in Luigi's task registry, the build arguments; :func:`prepare` does it all before anything is
recorded as a run."""

from __future__ import annotations

import configparser
import difflib
import re
from dataclasses import replace

import luigi
import luigi.configuration
from luigi.execution_summary import LuigiStatusCode
from luigi.task_register import Register, TaskClassException

from kwsops.compare.revisions import RevisionError, default_specs, parse_spec, resolve_revisions
from kwsops.params import PARAMS, REQUEST, Param, ParamError
from kwsops.pipeline.validate import ValidationInputError, require_test_split
from kwsops.runs.request import RequestError, RunRequest
from kwsops.versioning.git import resolve_commit
from kwsops.workspace import Workspace
from tasks.workers import WorkerFactory

__all__ = ["RunRequest", "check_config", "prepare"]

# sections Luigi (or a contrib module) reads itself, beside its registered Config classes
LUIGI_SECTIONS = ("logging", "resources", "task_history", "hdfs", "hadoop", "spark", "cors")
RENAMED = {("Preprocess", "workers"): "processes"}  # an older kwsops's option: its new name


def apply_overrides(request: RunRequest) -> None:
    """CLI flags become Luigi config values, exactly as if written in luigi.cfg."""
    config = luigi.configuration.get_config()

    def put(section: str, option: str, value: object) -> None:
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, option, str(value))

    for name, param in REQUEST.items():  # the training flags; the others are task arguments
        value = getattr(request, name)
        if param.training and value is not None:
            put(param.section, param.name, value)
    if request.fold_tasks:
        put("Train", "stacked", "false")
    put("core", "no_configure_logging", "true")
    if request.scheduler_host:
        # wait for tasks another worker is running instead of exiting with them pending
        put("worker", "keep_alive", "true")


def task_class(name: str) -> type[luigi.Task]:
    """A kwsops task class by its family name, from Luigi's task registry."""
    import tasks  # registers the kwsops tasks

    try:
        if name in tasks.__all__:
            return Register.get_task_cls(name)
    except TaskClassException:
        pass
    raise RequestError(f"--target {name}: no such task; use one of {', '.join(tasks.__all__)}")


def build_target(request: RunRequest) -> luigi.Task:
    cls = task_class(request.target)
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
    args: dict = {"detailed_summary": True, "worker_scheduler_factory": WorkerFactory()}
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
    check_config()
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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RequestError(f"luigi.cfg: {first}") from None
    return replace(request, **resolved)


def check_config() -> None:
    """RequestError (exit code 4) for the first mistake in luigi.cfg, as it stands with the
    flags written over it: a section or option no task has (``did you mean epochs?``), or a
    value that is not of its declared form or range. Luigi's own sections pass unchecked."""
    config = luigi.configuration.get_config()
    _check_names(config)
    for param in PARAMS:
        _check_value(config, param)


def _check_names(config: configparser.ConfigParser) -> None:
    import tasks

    stages = {name: [*dict(task_class(name).get_params())] for name in tasks.__all__}
    known = {*Register.task_names(), *LUIGI_SECTIONS}
    for section in config.sections():
        if section not in stages:
            hint = "" if section in known else _nearest(section, list(stages), "[{}]")
            if hint:  # near a stage's name: a misspelt one, whose settings would be ignored
                raise RequestError(f"luigi.cfg [{section}]: no such section{hint}")
            continue
        for option in config.options(section):
            # Luigi reads an option spelt with dashes as the parameter with underscores
            if option.replace("-", "_") in stages[section] or option in config.defaults():
                continue
            renamed = RENAMED.get((section, option))
            hint = f"; it is {renamed} now" if renamed else _nearest(option, stages[section])
            raise RequestError(f"luigi.cfg [{section}] {option}: {section} has no such "
                               f"option{hint}")  # fmt: skip


def _check_value(config: configparser.ConfigParser, param: Param) -> None:
    if not config.has_option(param.section, param.name):  # Luigi's: learning-rate too
        return
    raw = config.get(param.section, param.name, raw=True).strip()
    where = f"luigi.cfg [{param.section}] {param.name} = {raw}"
    try:
        param.check(param.parse(config.get(param.section, param.name)))
    except configparser.InterpolationError:
        raise RequestError(f"{where}: a bare % (write % as %%)") from None
    except ParamError as exc:
        raise RequestError(f"{where}: {exc}") from None


def _nearest(name: str, known: list[str], form: str = "{}") -> str:
    """``; did you mean epochs?`` when ``name`` looks like a misspelling of a known name."""
    lowered = {item.lower(): item for item in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {form.format(lowered[close[0]])}?" if close else ""


def moves_with_training(ws: Workspace, spec: str) -> bool:
    """A revision a run's own training changes: ``last:N`` (a new `train model` task), a git
    ref relative to HEAD (``HEAD~1`` may exist only after VersionModels commits) and a ref that
    exists now (a branch moves with that commit), not a sha. In a training run they are resolved
    when Validate runs; a ref that names nothing now (``git:nope:batch_16``) is refused at once."""
    kind, parts = parse_spec(spec)
    if kind == "last":
        return True
    if kind != "git" or re.fullmatch(r"[0-9a-f]{7,40}", parts["rev"]):
        return False
    relative = re.fullmatch(r"(HEAD|@)([~^]\d*)*", parts["rev"])
    return bool(relative) or resolve_commit(ws.root, parts["rev"]) is not None


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
            s
            for s in request.revisions or []
            if s not in trained and not moves_with_training(ws, s)
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
