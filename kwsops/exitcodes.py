"""Exit codes of `kwsops run` (and of `luigi --module tasks ...` via luigi.cfg [retcode])."""

OK = 0
TASK_FAILED = 1  # a task raised, or was not run; the run log says which and why
USAGE = 2  # bad command-line usage (argparse)
ALREADY_RUNNING = 3  # another run holds this workspace's lock
BAD_CONFIG = 4  # the workspace or a setting is wrong; nothing was run
QUALITY_GATE = 5  # the run finished but the best accuracy is under --fail-below
CANCELLED = 130  # stopped by SIGTERM/SIGINT (the console's cancel)

MEANINGS = {
    OK: "every task asked for is complete",
    TASK_FAILED: "a task failed",
    USAGE: "bad usage",
    ALREADY_RUNNING: "another run is active in this workspace",
    BAD_CONFIG: "bad configuration",
    QUALITY_GATE: "best accuracy under --fail-below",
    CANCELLED: "cancelled",
}
