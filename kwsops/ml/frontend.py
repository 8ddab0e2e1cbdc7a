"""The exported networks: waveform in, the fold ensemble's class probabilities out.

:func:`kwsops.ml.features.log_mel` calls ``torch.stft``, which the ONNX exporter cannot write as
one portable graph; here the same short-time Fourier transform is a ``conv1d`` whose kernels are
the DFT's windowed cosines and sines (reflect padding of ``n_fft // 2`` as ``center=True``),
followed by torchaudio's own mel filter bank and the same log floor. It matches ``log_mel``
within 1e-4 (tests/registry/test_export.py). Each fold model keeps its own ClipNorm and layers.

``kwsops export`` writes :class:`Ensemble` (a clip in, probabilities out); ``kwsops detect``
runs :class:`LogMel` once per chunk of a stream and :class:`Classifier` on batches of windows'
frames (:mod:`kwsops.compare.scorer_build`).
"""

from __future__ import annotations

import torch
from torch import nn

from kwsops.config import FeatureSettings
from kwsops.ml.features import LOG_FLOOR, _mel_transform


class LogMel(nn.Module):
    """``[B, samples]`` -> ``[B, n_mels, frames]``, as :func:`kwsops.ml.features.log_mel`."""

    def __init__(self, settings: FeatureSettings):
        super().__init__()
        transform = _mel_transform(settings)
        window = transform.spectrogram.window.double()
        n_fft = settings.n_fft
        left = (n_fft - window.numel()) // 2  # torch.stft centres a shorter window
        padded = torch.zeros(n_fft, dtype=torch.float64)
        padded[left : left + window.numel()] = window
        bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
        angle = 2 * torch.pi * bins * torch.arange(n_fft, dtype=torch.float64)[None, :] / n_fft
        basis = torch.cat([torch.cos(angle) * padded, -torch.sin(angle) * padded])
        self.register_buffer("basis", basis.float().unsqueeze(1))  # [2 * bins, 1, n_fft]
        self.register_buffer("mel", transform.mel_scale.fb.T.contiguous().float())
        self.hop, self.pad, self.bins = settings.hop_length, n_fft // 2, n_fft // 2 + 1

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(audio.unsqueeze(1), (self.pad, self.pad), mode="reflect")
        spectrum = nn.functional.conv1d(x, self.basis, stride=self.hop)
        power = spectrum[:, : self.bins].square() + spectrum[:, self.bins :].square()
        return torch.log(torch.matmul(self.mel, power).clamp_min(LOG_FLOOR))


class Classifier(nn.Module):
    """Log-mel ``[B, n_mels, frames]`` -> the mean of the fold models' softmaxes, each fold's
    columns put in the first fold's label order (``columns``, as
    :func:`kwsops.compare.predict.load_ensemble` gives).

    A TC-ResNet fold runs as its 2-D twin (:class:`kwsops.ml.stacked.GroupedTCResNet` of one
    member: ``[B, C, 1, frames]``, kernels ``1 x k``), the same arithmetic: onnxruntime's CPU
    convolutions are faster in 2-D (measured, one thread, 64 windows of 5 folds: 1090 windows
    per CPU-second against 680 with the 1-D graph)."""

    def __init__(self, models: list[nn.Module], columns: list[list[int]]):
        from kwsops.ml.stacked import GroupedTCResNet

        super().__init__()
        self.models = nn.ModuleList(models)
        for i, cols in enumerate(columns):
            self.register_buffer(f"columns_{i}", torch.tensor(cols, dtype=torch.long))
        self.twins: list[GroupedTCResNet | None] = []
        for model in models:
            try:
                self.twins.append(GroupedTCResNet([model], channels_last=False))
            except TypeError:  # another architecture: as it is
                self.twins.append(None)
        self.requires_grad_(False)  # an inference graph: a traced file returns plain tensors
        self.eval()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        probs = []
        for i, (model, twin) in enumerate(zip(self.models, self.twins, strict=True)):
            logits = (
                model(features) if twin is None else twin(features[:, None], [0], train=False)[:, 0]
            )
            probs.append(
                torch.softmax(logits, dim=1).index_select(1, getattr(self, f"columns_{i}"))
            )
        return torch.stack(probs).mean(dim=0)


class Ensemble(nn.Module):
    """Audio ``[B, samples]`` -> the fold ensemble's probabilities: :class:`LogMel` then
    :class:`Classifier`."""

    def __init__(
        self, settings: FeatureSettings, models: list[nn.Module], columns: list[list[int]]
    ):
        super().__init__()
        self.front = LogMel(settings)
        self.classifier = Classifier(models, columns)
        self.requires_grad_(False)
        self.eval()

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.front(audio))
