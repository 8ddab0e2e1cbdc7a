"""Runs of the pipeline: the run folder and its status (``folder``), the event log every worker
appends to (``events``), the workspace lock (``lock``), events folded into task states
(``state``), one run's life from lock to report (``session``), the run report as Markdown and
HTML (``pages``) and in the terminal (``show``), and the CLI's live progress view (``live``)."""
