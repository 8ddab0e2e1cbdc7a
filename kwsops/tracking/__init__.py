"""ClearML tracking, offline by default: where ClearML reads its settings for a workspace
(``setup``), one ClearML task per stage (``tracker``), the workspace's own index of those tasks
and their artifacts (``index``), and `kwsops clearml import` to a server (``importer``)."""
