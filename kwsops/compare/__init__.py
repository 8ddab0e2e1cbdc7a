"""Comparing model revisions: the revision grammar and its resolution (``revisions``), finding the
revisions a workspace holds (``discover``), scoring fold models on the held-out clips
(``evaluation``, ``breakdown``, ``spotting``), the comparison as typed data (``model``) and its
assembly (``assemble``), the report's sections (``sections``, ``wording``) rendered as Markdown and
HTML (``markdown``), in the terminal (``terminal``) and as PNG (``plots``), and classifying new
recordings with the best revision (``predict``, ``detect``)."""
