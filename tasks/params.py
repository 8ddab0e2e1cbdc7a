"""Luigi parameters built from the one declaration (:data:`kwsops.params.PARAMS`).

``declare("Train")`` gives a task class the parameters of [Train], each a Luigi parameter of
its type whose range or choices Luigi itself checks too (``NumericalParameter``,
``ChoiceParameter``), so `luigi --module tasks Validate` refuses what `kwsops run` refuses.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import luigi

from kwsops.params import Param, stage_params


def luigi_parameter(param: Param) -> luigi.Parameter:
    common = {"default": param.default, "description": param.help,
              "significant": param.significant}  # fmt: skip
    if param.choices:
        return luigi.ChoiceParameter(choices=param.choices, **common)
    if param.kind is bool:
        return luigi.BoolParameter(parsing=luigi.BoolParameter.EXPLICIT_PARSING, **common)
    if param.kind is list:
        return luigi.ListParameter(**common)
    if param.kind in (int, float) and param.low is not None and param.high is not None:
        return luigi.NumericalParameter(
            var_type=param.kind,
            min_value=param.kind(param.low),
            max_value=param.kind(param.high),
            left_op=operator.lt if param.low_open else operator.le,
            right_op=operator.lt if param.high_open else operator.le,
            **common,
        )
    return luigi.Parameter(**common)


def declare(section: str, *, skip: tuple[str, ...] = ()) -> Callable[[type], type]:
    """A class decorator: the declared parameters of ``section`` (but ``skip``) as the class's
    own. Luigi finds a task's parameters among its class attributes when it is used."""

    def add(cls: type) -> type:
        for param in stage_params(section):
            if param.name not in skip:
                parameter = luigi_parameter(param)
                setattr(cls, param.name, parameter)
                parameter.__set_name__(cls, param.name)  # as a class body would
        return cls

    return add
