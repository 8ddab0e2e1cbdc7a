"""kwsops: train, version, track and compare keyword-spotting models.

The core modules here know nothing of Luigi or Textual: ``tasks`` wires them into a Luigi DAG
and ``kwsops.tui`` puts a console on top.
"""

__version__ = "0.1.0"
