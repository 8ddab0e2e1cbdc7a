"""The stages as plain functions, one module per stage (``preprocess``, ``spectrograms``,
``train``, ``version``, ``validate``): each writes its output atomically with its stamp last,
logs to ClearML and returns a ``result.StageResult``; the Luigi tasks in ``tasks/`` call them."""
