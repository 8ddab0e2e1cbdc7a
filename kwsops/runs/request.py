"""What a run asks for: its command, its parameters and their allowed ranges.

One :class:`RunRequest` for every way a run starts: `kwsops run` and `kwsops validate` build
it from their flags, the console from its start dialog, `kwsops rerun` from a past run's
params.json. Its parameters are the declared ones (:data:`kwsops.params.REQUEST`). Before a
run starts, the request is resolved against luigi.cfg (tasks/luigi_config.py) and checked here
(:meth:`RunRequest.check`): a bad value stops it with one line naming the value and the
allowed range, exit code 4, and nothing recorded as a run. The resolved request is what
params.json records, so a rerun repeats exactly what ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, field, fields, make_dataclass, replace
from typing import Any

from kwsops import exitcodes
from kwsops.compare.revisions import FORMS_HELP, is_valid_spec
from kwsops.params import REQUEST, TRAINING, ParamError, shown

COMMANDS = ("run", "validate")  # what runs: the whole DAG, or the comparison alone
KINDS = (*COMMANDS, "rerun")  # what params.json calls the run


class RequestError(ValueError):
    """A parameter or revision is out of range or unknown; nothing was run (exit code 4)."""

    exit_code = exitcodes.BAD_CONFIG


class _Request:
    """The behaviour of :class:`RunRequest`; its fields are declared below, the parameters'
    from :data:`kwsops.params.REQUEST` (None: not asked, luigi.cfg decides)."""

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise RequestError(f"command {self.command!r} is not one of {', '.join(COMMANDS)}")
        if self.asked is None:  # kept through dataclasses.replace: resolving adds no flags
            self.asked = frozenset(name for name in REQUEST if getattr(self, name) is not None)

    @property
    def standalone(self) -> bool:
        """Validate alone, without the stages before it."""
        return self.command == "validate"

    @property
    def kind(self) -> str:
        return "rerun" if self.rerun_of else self.command

    # params.json -------------------------------------------------------------------------------
    def params(self) -> dict:
        """What params.json records (run_id and origin are added by the run folder)."""
        training = {*TRAINING, "fold_tasks"}
        skip = {"run_id", "origin", "asked"} | (training if self.standalone else set())
        values = {k: v for k, v in asdict(self).items() if k not in skip}
        values = {k: v for k, v in values.items() if v not in (None, [], {})}
        return {"kind": self.kind, **values, "standalone": self.standalone}

    @classmethod
    def from_params(cls, params: dict, **changes: Any) -> RunRequest:
        """The request a past run's params.json describes. Older runs (no ``command``) read
        as validate-only when they were ``standalone``."""
        if "argv" in params and "command" not in params and "target" not in params:
            argv = " ".join(str(a) for a in params["argv"])
            raise RequestError(
                f"run {params.get('run_id', '?')} was started as `luigi {argv}`; "
                "start it again the same way"
            )
        known = {f.name for f in fields(cls)} - {"asked", "command", "run_id"}
        values = {k: v for k, v in params.items() if k in known}
        command = params.get("command") or ("validate" if params.get("standalone") else "run")
        try:
            request = cls(command=command, **values)
        except TypeError as exc:
            raise RequestError(f"params.json cannot be read as a run: {exc}") from None
        return replace(request, **changes) if changes else request

    # the command line --------------------------------------------------------------------------
    def arguments(self) -> list[str]:
        """The `kwsops` arguments that ask for this run (subcommand first)."""
        args = [self.command]
        for name, param in REQUEST.items():  # `kwsops validate` takes no training flags
            if self.standalone and (param.training or param.section == "core"):
                continue
            if name == "scheduler_port" and self.scheduler_host and not self.standalone:
                args += ["--scheduler-host", self.scheduler_host]
            value = getattr(self, name)
            if value is None or value == []:
                continue
            values = value if isinstance(value, list) else [value]
            args += [param.flag, *map(shown, values)]
        if self.fold_tasks and not self.standalone:
            args.append("--fold-tasks")
        if self.target != "Validate":
            args += ["--target", self.target]
        for flag, value in (("--run-id", self.run_id), ("--rerun-of", self.rerun_of)):
            if value:
                args += [flag, value]
        return [*args, "--origin", self.origin]

    # the one check -----------------------------------------------------------------------------
    def check(self, label: Callable[[str], str] | None = None) -> RunRequest:
        """Raise :class:`RequestError` naming the first value out of range (``label`` says
        where a value came from; default: its flag, or luigi.cfg when the user did not set it)."""
        where = label or self.where
        for name, param in REQUEST.items():
            value = getattr(self, name)
            if value is None or (self.standalone and param.training):
                continue
            try:
                param.check(value)
            except ParamError as exc:
                values = value if isinstance(value, list) else [value]
                told = " ".join([where(name), *map(shown, values)])
                raise RequestError(f"{told}: {exc}") from None
        for spec in self.revisions or []:
            if not is_valid_spec(spec):
                raise RequestError(f"{where('revisions')} {shown(spec)}: use {FORMS_HELP}")
        return self

    def where(self, name: str) -> str:
        param = REQUEST[name]
        return param.flag if name in self.asked else f"luigi.cfg {param.option} ="


_FIELDS = [
    ("command", str, field(default="run")),  # run | validate
    ("target", str, field(default="Validate")),  # the Luigi task to build (the DAG's last one)
    *[(name, Any, field(default=None)) for name in REQUEST],
    ("fold_tasks", bool | None, field(default=None)),  # one TrainFold task per fold
    ("scheduler_host", str | None, field(default=None)),
    ("run_id", str | None, field(default=None)),
    ("origin", str, field(default="cli")),
    ("rerun_of", str | None, field(default=None)),  # the run this one repeats
    ("asked", frozenset | None, field(default=None, compare=False)),  # what the user set
]
RunRequest = make_dataclass("RunRequest", _FIELDS, bases=(_Request,))
RunRequest.__module__ = __name__
RunRequest.__doc__ = """What a run asks for. Its parameter fields are :data:`kwsops.params.REQUEST`
(``batch_sizes``, ``epochs``, ...); None leaves a parameter to luigi.cfg."""


def params_line(params: dict, *, revisions: bool = True) -> str:
    """The parameters a person tells runs apart by, on one line: ``bs 16,32 · ep 2 · folds 2 ·
    lr 0.005 · +1 rev``. Values are never cut: a narrow cell drops whole parts instead."""
    parts = []
    extra = params.get("revisions")
    if kind_of(params) == "validate" or (params.get("standalone") and extra):
        specs = [str(spec) for spec in extra or []]
        return "compare " + (" ".join(specs) if specs else "the workspace's models")
    batches = params.get("batch_sizes")
    if isinstance(batches, list) and batches:
        parts.append("bs " + ",".join(str(b) for b in batches))
    for key, param in REQUEST.items():
        if param.short and params.get(key) is not None:
            parts.append(f"{param.short} {shown(params[key])}")
    if revisions and isinstance(extra, list) and extra:
        parts.append(f"+{len(extra)} rev")
    return " · ".join(parts)


def kind_of(params: dict) -> str:
    """run | validate | rerun | luigi (started by `luigi --module tasks`) for any params.json."""
    if params.get("kind") in KINDS:
        return str(params["kind"])
    if "argv" in params:
        return "luigi"
    return "validate" if params.get("standalone") else "run"
