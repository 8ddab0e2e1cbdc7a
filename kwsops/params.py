"""Every run parameter, declared once: its luigi.cfg section and option, type, range or choices,
default and help.

The Luigi tasks build their parameters from it (tasks/params.py), `kwsops run` its flags
(kwsops/cli/common.py), :class:`kwsops.runs.request.RunRequest` its fields and its check, the
console its start form, and the request check names an option by it (``luigi.cfg [Train]
epochs``). The defaults match the original study (DESIGN.md); kwsops/templates/luigi.cfg
writes them out, and a test holds the two in agreement.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kwsops.config import (
    DEFAULT_BATCH_SIZES,
    PRECISIONS,
    AudioSettings,
    FeatureSettings,
    SplitSettings,
    TrainSettings,
)
from kwsops.keywords import DEFAULT_BUDGET

_AUDIO, _SPLIT, _TRAIN = AudioSettings(), SplitSettings(), TrainSettings()


class ParamError(ValueError):
    """A value outside its parameter's range or choices (the message names the range)."""


@dataclass(frozen=True)
class Param:
    """One parameter. ``kind`` is int, float, str, bool or list (of ``item``); a number has a
    range ``low``..``high`` (an end is excluded when ``low_open``/``high_open``); a string may
    have ``choices``. ``request`` names the RunRequest field and `kwsops run` flag that set it
    (empty: luigi.cfg only)."""

    section: str
    name: str
    kind: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    item: type | None = None
    request: str = ""
    training: bool = False  # a validate-only run ignores it
    significant: bool = True  # changes what the stage makes (Luigi's ``significant``)
    short: str = ""  # in a run's one-line summary: ``ep 30``
    metavar: str = "N"
    unique: bool = False  # a list names each value once (batch sizes), and at least one
    regex_group: str = ""  # a regex that must have this named group (speaker_pattern)

    @property
    def option(self) -> str:
        return f"[{self.section}] {self.name}"

    @property
    def flag(self) -> str:
        return "--" + (self.request or self.name).replace("_", "-")

    @property
    def number_kind(self) -> type | None:
        kind = self.item if self.kind is list else self.kind
        return kind if kind in (int, float) else None

    def describe(self) -> str:
        """The allowed values in words: ``an integer from 1 to 10000``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = self.number_kind
        if kind is None or self.low is None or self.high is None:
            return {bool: "true or false", list: "a JSON list"}.get(self.kind, "text")
        what = "an integer" if kind is int else "a number"
        low, high = _number(self.low, kind), _number(self.high, kind)
        if not (self.low_open or self.high_open):
            return f"{what} from {low} to {high}"
        above = f"above {low}" if self.low_open else f"from {low}"
        below = f"below {high}" if self.high_open else f"at most {high}"
        return f"{what} {above} and {below}"

    def allows(self, value: Any) -> bool:
        """Whether one value (one item of a list) is in range or among the choices."""
        if self.choices:
            return value in self.choices
        kind = self.number_kind
        if kind is None:
            return True
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        if kind is int and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def parse(self, text: str) -> Any:
        """A luigi.cfg or command-line value as this parameter's type; ParamError naming the
        expected form when it is not one."""
        text = text.strip()
        try:
            if self.kind is list:
                value = json.loads(text)
                if not isinstance(value, list):
                    raise ValueError(text)
                return [self._scalar(item, self.item) for item in value] if self.item else value
            return self._scalar(text, self.kind)
        except (ValueError, TypeError):
            raise ParamError(f"expected {self.form()}") from None

    def parse_item(self, text: str) -> Any:
        """One command-line word: a value, or one item of a list."""
        try:
            return self._scalar(text, self.item if self.kind is list else self.kind)
        except (ValueError, TypeError):
            raise ParamError(f"expected {self.form()}") from None

    def form(self) -> str:
        """What a value looks like, for an error message."""
        if self.kind is list:
            example = self.default or ["catch", "gun"]
            return f"a JSON list such as {json.dumps(list(example))}"
        if self.regex_group:
            return f"a regex with a group named {self.regex_group} (write % as %%)"
        return self.describe()

    @staticmethod
    def _scalar(value: Any, kind: type | None) -> Any:
        if kind is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError(value)
            return lowered == "true"
        if kind is int:
            if isinstance(value, float) or (
                isinstance(value, str) and not value.strip().lstrip("+-").isdigit()
            ):
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is str and not isinstance(value, str):
            raise TypeError(value)
        return value

    def check(self, value: Any) -> None:
        """ParamError naming the range when ``value`` (or an item of a list) is outside it."""
        values = value if isinstance(value, list | tuple) else [value]
        if self.unique:
            if not values:
                raise ParamError(
                    f"choose at least one {self.name.removesuffix('s').replace('_', ' ')}"
                )
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ParamError(f"{', '.join(map(shown, twice))} named twice: name each once")
        if self.regex_group and value:
            try:
                groups = re.compile(value).groupindex
            except re.error as exc:
                raise ParamError(f"not a regex ({exc})") from None
            if self.regex_group not in groups:
                group = self.regex_group
                raise ParamError(f"the regex needs a group named {group}: (?P<{group}>...)")
        for item in values:
            if not self.allows(item):
                raise ParamError(f"{'use' if self.choices else 'must be'} {self.describe()}")


def _number(value: float, kind: type) -> str:
    return str(int(value)) if kind is int else f"{value:g}"


def shown(value: object) -> str:
    """A value as a person types it: ``0.0005``, ``16``, never ``4.29497e+09`` for an int."""
    return f"{value:g}" if isinstance(value, float) else str(value)


SEED_RANGE = {"low": 0, "high": 2**32 - 1}

PARAMS: tuple[Param, ...] = (
    Param("VersionInput", "link", bool, True, significant=False,
          help="link the recordings into the DVC cache (read-only); false: a copy"),
    Param("Preprocess", "sample_rate", int, _AUDIO.sample_rate, "sample rate of the clips (Hz)",
          low=8_000, high=48_000),
    Param("Preprocess", "clip_seconds", float, _AUDIO.clip_seconds, "length of every clip (s)",
          low=0.0, high=60.0, low_open=True),
    Param("Preprocess", "seed", int, _SPLIT.seed, "seed of the padding noise", **SEED_RANGE),
    Param("Preprocess", "processes", int, 2, "decoding processes (the output is the same)",
          low=1, high=256, significant=False),
    Param("Preprocess", "labels", list, [], "the label folders, in any case (empty: every one "
          "found)", item=str),
    Param("Preprocess", "speaker_pattern", str, "", "regex with a group named speaker (empty: "
          "built-in namings)", regex_group="speaker"),
    Param("Preprocess", "unknown_words", bool, False,
          help="with labels listed: recordings in the other folders are unknown speech "
          "(_unknown_), Speech Commands' convention"),
    Param("MakeSpectrograms", "test_size", float, _SPLIT.test_size,
          "share of the clips held out for the test split", low=0.0, high=0.5, low_open=True),
    Param("MakeSpectrograms", "seed", int, _SPLIT.seed, "seed of the test split", **SEED_RANGE),
    Param("MakeSpectrograms", "n_mels", int, FeatureSettings().n_mels, "mel bands",
          low=8, high=256),
    Param("VersionModels", "batch_sizes", list, list(DEFAULT_BATCH_SIZES), item=int, low=1,
          high=4096, request="batch_sizes", unique=True,
          help="batch sizes to train and compare, e.g. 16 32 64"),
    Param("Train", "epochs", int, _TRAIN.epochs, low=1, high=10_000, request="epochs",
          training=True, short="ep",
          help="most epochs per fold; early stopping may end one sooner"),
    Param("Train", "folds", int, _TRAIN.folds, low=2, high=100, request="folds", training=True,
          short="folds", metavar="K", help="cross-validation folds per batch size"),
    Param("Train", "learning_rate", float, _TRAIN.learning_rate, low=0.0, high=1.0,
          low_open=True, request="learning_rate", training=True, short="lr", metavar="LR",
          help="peak of the one-cycle schedule"),
    Param("Train", "seed", int, _TRAIN.seed, **SEED_RANGE, request="seed", training=True,
          help="seed of the folds and the training"),
    Param("Train", "precision", str, _TRAIN.precision, choices=PRECISIONS, request="precision",
          training=True, metavar="P",
          help="compute precision of the training steps (auto: bfloat16 on a CPU with "
          "bfloat16 arithmetic, else float32)"),
    Param("Train", "stacked", bool, True, significant=False,
          help="train the folds together in this task; false: one TrainFold task per fold, for "
          "luigid workers on several machines"),
    Param("Validate", "revisions", list, [], item=str, request="revisions", metavar="REV",
          help="revisions compared besides the new models"),
    Param("Validate", "fail_below", float, 0.0, low=0.0, high=1.0, request="fail_below",
          metavar="ACC", help="exit 5 when the best accuracy is under ACC"),
    Param("Validate", "false_alarms_per_hour", float, DEFAULT_BUDGET, low=0.0, high=3600.0,
          low_open=True, request="false_alarms_per_hour", metavar="FA",
          help="the false-alarm budget per hour the operating threshold is chosen for (on the "
          "training folds' out-of-fold scores); the miss rate is reported at it"),
    Param("core", "workers", int, 2, low=1, high=256, request="workers",
          help="Luigi worker processes, each training one fold at a time"),
    Param("core", "default_scheduler_port", int, 8082, low=1, high=65_535,
          request="scheduler_port", metavar="PORT", help="luigid's port"),
)  # fmt: skip


def stage_params(section: str) -> Iterator[Param]:
    """The parameters of one stage (a luigi.cfg section), in declaration order."""
    return (p for p in PARAMS if p.section == section)


def param(section: str, name: str) -> Param:
    return next(p for p in PARAMS if (p.section, p.name) == (section, name))


# what a run request can set, by its field name (the `kwsops run` flags)
REQUEST: dict[str, Param] = {p.request: p for p in PARAMS if p.request}
TRAINING: tuple[str, ...] = tuple(name for name, p in REQUEST.items() if p.training)
