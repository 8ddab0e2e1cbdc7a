"""The classes a spotter knows beside the user's words, and the operating point a revision keeps.

Speech Commands' 12-class task adds ``_unknown_`` (speech that is none of the words) and
``_silence_`` (noise, nothing said) to its words; kwsops names them the same way. A folder whose
name starts with ``_`` is never a word, so neither name can clash with a user's label.

The operating point is the detection threshold chosen for a false-alarm budget on held-out
(out-of-fold) scores. It is written beside a batch size's fold folders
(``data/models/batch_<bs>/operating_point.json``), versioned with them, and read by everything
that decides "a word was said": ``kwsops predict``, ``kwsops detect`` and the exported model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from kwsops.atomic import atomic_write_json

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
NON_WORDS = (UNKNOWN, SILENCE)
OPERATING_POINT = "operating_point.json"
# a revision trained before operating points were kept: the word must win with this probability
DEFAULT_THRESHOLD = 0.5
# said once by the run, the report and the Data screen when no _unknown_ clip was kept
NO_UNKNOWN = (
    "no unknown speech (data/input/_unknown_/): the model will call any speech one of the words"
)
DEFAULT_BUDGET = 1.0  # false alarms per hour: [Validate] false_alarms_per_hour


def is_word(label: str) -> bool:
    """True for one of the user's words, False for ``_unknown_`` and ``_silence_``."""
    return label not in NON_WORDS


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float  # a word is detected when its probability reaches this
    false_alarms_per_hour: float  # the budget the threshold was chosen for
    miss_rate: float | None = None  # the words missed at the threshold, out of fold
    negative_minutes: float | None = None  # how much non-word audio the choice was made on

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold, int | float) and 0.0 <= self.threshold <= 1.0):
            raise ValueError(f"threshold {self.threshold!r} is not a probability (0 to 1)")
        budget = self.false_alarms_per_hour
        if not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
            raise ValueError(f"false_alarms_per_hour {budget!r} is not a positive number")


def write_operating_point(folder: str | Path, point: OperatingPoint) -> Path:
    """Write ``point`` into a batch size's model folder (atomically)."""
    return atomic_write_json(Path(folder) / OPERATING_POINT, asdict(point))


def read_operating_point(folder: str | Path) -> OperatingPoint | None:
    """The operating point kept in ``folder``; None when the revision has none (trained before
    they were kept). A damaged file is a ValueError naming it."""
    path = Path(folder) / OPERATING_POINT
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {key: data[key] for key in OperatingPoint.__dataclass_fields__ if key in data}
        return OperatingPoint(**known)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{path}: damaged operating point ({exc}); retrain to write it again"
        ) from exc
