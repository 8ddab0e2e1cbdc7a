"""Machine learning: log-mel features and the packed spectrogram data set with its
speaker-grouped split (``features``), its files streamed to disk and read back per batch
(``store``), spectrogram augmentation (``augment``), the TC-ResNet and
its safetensors model file (``model``), and k-fold training with early stopping (``training``)."""
