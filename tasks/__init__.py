"""The Luigi task module: `luigi --module tasks Validate` from a workspace root.

Importing it registers the event handlers that feed reports/runs/<id>/events.jsonl, and, when
the process is Luigi's own command line, takes the workspace lock and opens a run folder (see
``tasks.luigi_cli``), so a run started this way is guarded and recorded like `kwsops run`.
"""

from tasks import events as _events  # noqa: F401  (registers the event handlers)
from tasks.luigi_cli import guard_luigi_command_line
from tasks.pipeline import (
    MakeSpectrograms,
    Preprocess,
    Train,
    TrainFold,
    VersionInput,
    VersionModels,
    VersionOutput,
    VersionSpectrograms,
)
from tasks.validate import Validate

__all__ = [
    "MakeSpectrograms",
    "Preprocess",
    "Train",
    "TrainFold",
    "VersionInput",
    "VersionModels",
    "VersionOutput",
    "Validate",
    "VersionSpectrograms",
]

guard_luigi_command_line()
