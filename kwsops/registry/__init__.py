"""What leaves the workspace: promoting a revision into the registry (GTO tags, written by
:mod:`kwsops.versioning.tags`; ``promote``), listing it (``listing``), and exporting a revision as
one ONNX (or TorchScript) file with the log-mel front end inside (``frontend``, ``export``),
checked against PyTorch when written, with its model card (``card``)."""
