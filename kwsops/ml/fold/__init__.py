"""The fold: one cross-validation fold's training, as both ways of training share it.

``setup``: what a training call may set (``FoldOptions``), what its folds share (``FoldSetup``:
settings, augmentation, architecture, device, precision), the split and its folds
(``FoldData``), and one fold's seeded start (``new_fold``: network, noise bank, Augmenter,
shuffling, AdamW and its schedule). ``book``: an epoch's history row, best weights and early
stopping (``EpochBook``). ``files``: what a fold folder holds (``model.safetensors``,
``metrics.json``, ``history.csv``), written (``write_fold``) and read (``read_history``).

:mod:`kwsops.ml.training` trains one fold at a time, :mod:`kwsops.ml.stacked` the folds of a batch
size together; :mod:`kwsops.ml.oof` scores each fold's held-out clips.
"""
