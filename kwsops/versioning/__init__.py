"""Versions of data and models: the one runner of git and dvc subprocesses (``runner``), DVC
add/push/pull (``dvc``) and its configuration (``dvc_config``), git commits and lookups
(``git``), the local and WebDAV remotes (``remote``), and `kwsops init` (``init``)."""
