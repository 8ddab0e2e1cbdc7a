"""What a run asks for: its command, its parameters and their allowed ranges.

One :class:`RunRequest` for every way a run starts: `kwsops run` and `kwsops validate` build
it from their flags, the console from its start dialog, `kwsops rerun` from a past run's
params.json. Before a run starts, the request is resolved against luigi.cfg (tasks/request.py)
and checked here (:meth:`RunRequest.check`): a bad value stops it with one line naming the
value and the allowed range, exit code 4, and nothing recorded as a run. The resolved request
is what params.json records, so a rerun repeats exactly what ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from kwsops import exitcodes
from kwsops.compare.revisions import FORMS_HELP, is_valid_spec
from kwsops.config import PRECISIONS

COMMANDS = ("run", "validate")  # what runs: the whole DAG, or the comparison alone
KINDS = (*COMMANDS, "rerun")  # what params.json calls the run


class RequestError(ValueError):
    """A parameter or revision is out of range or unknown; nothing was run (exit code 4)."""

    exit_code = exitcodes.BAD_CONFIG


@dataclass(frozen=True)
class Limit:
    kind: type
    low: float
    high: float
    low_open: bool = False  # the low end itself is not allowed (a learning rate of 0)

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low_open:
            return f"{what} above {self.low:g} and at most {self.high:g}"
        return f"{what} from {self.low:g} to {self.high:g}"


LIMITS: dict[str, Limit] = {
    "batch_sizes": Limit(int, 1, 4096),
    "epochs": Limit(int, 1, 10_000),
    "folds": Limit(int, 2, 100),
    "learning_rate": Limit(float, 0.0, 1.0, low_open=True),
    "seed": Limit(int, 0, 2**32 - 1),
    "fail_below": Limit(float, 0.0, 1.0),
    "workers": Limit(int, 1, 256),
    "scheduler_port": Limit(int, 1, 65_535),
}
FLAGS = {name: "--" + name.replace("_", "-") for name in (*LIMITS, "revisions", "precision")}
# where luigi.cfg sets each parameter (kwsops/templates/luigi.cfg)
CONFIG_OPTIONS = {
    "batch_sizes": "[VersionModels] batch_sizes",
    "epochs": "[Train] epochs",
    "folds": "[Train] folds",
    "learning_rate": "[Train] learning_rate",
    "seed": "[Train] seed",
    "precision": "[Train] precision",
    "revisions": "[Validate] revisions",
    "fail_below": "[Validate] fail_below",
    "workers": "[core] workers",
}
TRAINING = (
    "epochs",
    "folds",
    "learning_rate",
    "seed",
    "precision",
)  # what a validate-only run ignores


@dataclass
class RunRequest:
    command: str = "run"  # run | validate
    target: str = "Validate"  # the Luigi task to build (the DAG's last one by default)
    batch_sizes: list[int] | None = None
    epochs: int | None = None
    folds: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    precision: str | None = None  # of the training steps: PRECISIONS
    revisions: list[str] | None = None  # compared besides the new models (run), or alone
    fail_below: float | None = None
    workers: int | None = None
    fold_tasks: bool | None = None  # one TrainFold task per fold ([Train] stacked = false)
    scheduler_host: str | None = None
    scheduler_port: int | None = None
    run_id: str | None = None
    origin: str = "cli"
    rerun_of: str | None = None  # the run this one repeats
    asked: frozenset[str] | None = field(default=None, compare=False)  # what the user set

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise RequestError(f"command {self.command!r} is not one of {', '.join(COMMANDS)}")
        if self.asked is None:  # kept through dataclasses.replace: resolving adds no flags
            given = (*LIMITS, "revisions", "precision")
            self.asked = frozenset(name for name in given if getattr(self, name) is not None)

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
        if self.standalone:  # `kwsops validate` takes no training or worker flags
            names = ["batch_sizes", "revisions", "fail_below"]
        else:
            names = ["batch_sizes", *TRAINING, "revisions", "fail_below", "workers",
                     "scheduler_host", "scheduler_port"]  # fmt: skip
        for name in names:
            value = getattr(self, name)
            if value is None or value == []:
                continue
            flag = "--" + name.replace("_", "-")
            args += [flag, *map(_arg, value)] if isinstance(value, list) else [flag, _arg(value)]
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
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            if value is None or (self.standalone and name in TRAINING):
                continue
            values = value if isinstance(value, list) else [value]
            if name == "batch_sizes" and not values:
                raise RequestError(f"{where(name)}: choose at least one batch size")
            for item in values:
                if not limit.allows(item):
                    shown = " ".join(map(_arg, values))
                    raise RequestError(f"{where(name)} {shown}: must be {limit.describe()}")
        if self.precision is not None and not self.standalone and self.precision not in PRECISIONS:
            raise RequestError(
                f"{where('precision')} {self.precision}: use one of {', '.join(PRECISIONS)}"
            )
        for spec in self.revisions or []:
            if not is_valid_spec(spec):
                raise RequestError(f"{where('revisions')} {_arg(spec)}: use {FORMS_HELP}")
        return self

    def where(self, name: str) -> str:
        if name in self.asked or name not in CONFIG_OPTIONS:
            return FLAGS.get(name, name)
        return f"luigi.cfg {CONFIG_OPTIONS[name]} ="


def _arg(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def params_line(params: dict, *, revisions: bool = True) -> str:
    """The parameters a person tells runs apart by, on one line: ``bs 16,32 · ep 2 · folds 2 ·
    lr 0.005 · +1 rev``. Values are never cut: a narrow cell drops whole parts instead."""
    parts = []
    extra = params.get("revisions")
    if kind_of(params) == "validate" or (params.get("standalone") and extra):
        shown = [str(spec) for spec in extra or []]
        return "compare " + (" ".join(shown) if shown else "the workspace's models")
    batches = params.get("batch_sizes")
    if isinstance(batches, list) and batches:
        parts.append("bs " + ",".join(str(b) for b in batches))
    for key, short in (("epochs", "ep"), ("folds", "folds"), ("learning_rate", "lr")):
        if params.get(key) is not None:
            value = params[key]
            parts.append(f"{short} {_arg(value) if isinstance(value, float) else value}")
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
