"""What the console reads from the workspace, in plain Python (no Textual): the monitor's
snapshot of runs and tasks, the dashboard's stage rows, luigid's task list, the manifest's
summary, the log's line index. Screens show it; tests call it directly."""
