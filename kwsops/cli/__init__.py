"""The `kwsops` command (argparse): the entry point and pipeline commands (``main``), comparison
commands (``compare``: validate, report, predict), operations (``ops``: runs, cancel, remote,
pull, clearml) and what they share (``common``)."""
