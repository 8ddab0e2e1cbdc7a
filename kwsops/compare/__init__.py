"""Comparing model revisions: the revision grammar and its resolution (``revisions``), finding the
revisions a workspace holds (``discover``), scoring fold models on the held-out clips
(``evaluation``), the comparison as Markdown and PNG (``markdown``) and in the terminal
(``terminal``), and classifying new recordings with the best revision (``predict``)."""
