"""The one vocabulary of run and task states, and how every medium shows them.

Tasks are ``pending``, ``running``, ``done``, ``up to date``, ``failed`` or ``cancelled``
(``not run`` in a finished run that never reached them); runs are ``running``, ``ok``, ``failed``,
``cancelled`` or ``killed`` (``unknown`` without a status file). The CLI, the run report and
the console all take their colours and icons from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StateLook:
    style: str  # a rich style (CLI and console)
    icon: str
    colour: str  # an HTML colour (the run report)


LOOKS: dict[str, StateLook] = {
    "pending": StateLook("dim", "·", "#9e9e9e"),
    "not run": StateLook("dim", "·", "#9e9e9e"),
    "running": StateLook("bold yellow", "▶", "#f9a825"),
    "done": StateLook("green", "✔", "#2e7d32"),
    "up to date": StateLook("cyan", "≡", "#00838f"),
    "ok": StateLook("bold green", "✔", "#2e7d32"),
    "failed": StateLook("bold red", "✘", "#c62828"),
    "cancelled": StateLook("magenta", "■", "#8e24aa"),
    "killed": StateLook("red", "✘", "#c62828"),
    "unknown": StateLook("dim", "?", "#607d8b"),
}
_UNKNOWN = LOOKS["unknown"]

TASK_STATES = ("pending", "running", "done", "up to date", "failed", "cancelled")
RUN_STATES = ("running", "ok", "failed", "cancelled", "killed")


def style(state: str) -> str:
    return LOOKS.get(state, _UNKNOWN).style


def icon(state: str) -> str:
    return LOOKS.get(state, _UNKNOWN).icon


def colour(state: str) -> str:
    return LOOKS.get(state, _UNKNOWN).colour
