"""Modal dialogs, one per file: start a run, confirm, pick a run, compare two runs, promote a
revision, the keys' help. Each returns its answer through ``dismiss``; the caller acts on it."""
