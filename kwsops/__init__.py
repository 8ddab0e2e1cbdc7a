"""kwsops: train, version, track and compare keyword-spotting models.

The core (every subpackage but ``cli`` and ``tui``, and the base modules beside them) knows
nothing of Luigi or Textual: ``tasks`` wires it into a Luigi DAG, ``kwsops.tui`` puts a console
on top and ``kwsops.cli`` is the `kwsops` command. docs/ARCHITECTURE.md maps the families and
their layers; `lint-imports` checks them.
"""

__version__ = "0.1.0"
