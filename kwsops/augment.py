"""Spectrogram-domain augmentation, batched, seeded, each part switchable by name for ablations.

Everything works on natural-log mel power ``[B, n_mels, frames]`` before the model's per-clip
normalisation. Order: gain -> noise -> time shift / speed / pitch (one resampling grid) -> time
and frequency masks -> mixup. Gain is an offset in the log domain; after per-clip normalisation
it only matters through the log floor and the noise it is mixed with, which is the point: the
model must not care about loudness.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from kwsops.config import FeatureSettings
from kwsops.features import LOG_FLOOR, log_mel

AUGMENTATIONS: tuple[str, ...] = (
    "gain",
    "noise",
    "time_shift",
    "speed",
    "pitch",
    "time_mask",
    "freq_mask",
    "mixup",
)
_LOG_FLOOR = math.log(LOG_FLOOR)
_DB_TO_LOG = math.log(10) / 10  # power dB -> natural log


@dataclass(frozen=True)
class AugmentSettings:
    """Which augmentations run and how strong they are; ``.without(name)`` for an ablation."""

    gain: bool = True
    noise: bool = True
    time_shift: bool = True
    speed: bool = True
    pitch: bool = True
    time_mask: bool = True
    freq_mask: bool = True
    mixup: bool = False
    prob: float = 0.8  # chance each enabled augmentation touches a given clip
    gain_db: float = 10.0  # uniform +- in power dB
    noise_snr_db: tuple[float, float] = (3.0, 25.0)
    shift_fraction: float = 0.15  # max +- time shift, share of the clip
    speed_range: float = 0.15  # time stretch factor in [1 - r, 1 + r]
    pitch_bins: float = 1.5  # +- shift along the mel axis, in mel bins
    time_masks: int = 2
    time_mask_fraction: float = 0.08  # max width of one mask, share of the frames
    freq_masks: int = 2
    freq_mask_fraction: float = 0.15  # max width of one mask, share of the mel bins
    mixup_alpha: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise_snr_db", tuple(self.noise_snr_db))

    @classmethod
    def none(cls) -> AugmentSettings:
        return cls(**{name: False for name in AUGMENTATIONS})

    def without(self, name: str) -> AugmentSettings:
        self._check(name)
        return replace(self, **{name: False})

    def with_(self, name: str) -> AugmentSettings:
        self._check(name)
        return replace(self, **{name: True})

    @property
    def enabled(self) -> list[str]:
        return [name for name in AUGMENTATIONS if getattr(self, name)]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> AugmentSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(
                f"unknown augmentation settings {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**values)

    @staticmethod
    def _check(name: str) -> None:
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")


def noise_bank(
    features: FeatureSettings,
    frames: int,
    train_log_mels: torch.Tensor | None = None,
    count: int = 24,
    seed: int = 0,
) -> torch.Tensor:
    """Linear mel power noise clips ``[count, n_mels, frames]``.

    Half synthetic coloured noise (white, pink, brown, blue; some amplitude-modulated) run through
    the real ``log_mel``; half speech-shaped noise whose spectrum is the mean of the training
    clips (``train_log_mels``), with random per-bin fluctuation like a periodogram's.
    """
    gen = torch.Generator().manual_seed(seed)
    samples = (frames - 1) * features.hop_length
    freqs = torch.fft.rfftfreq(samples, d=1 / features.sample_rate).clamp_min(20.0)
    coloured = count if train_log_mels is None else count // 2
    waves = []
    for k in range(coloured):
        exponent = (0.0, -1.0, -2.0, 1.0)[k % 4]  # power slope: white, pink, brown, blue
        spectrum = torch.randn(len(freqs), dtype=torch.complex64, generator=gen)
        wave = torch.fft.irfft(spectrum * freqs.pow(exponent / 2), n=samples)
        if k % 3 == 2:  # slow amplitude modulation: traffic, wind, a fan speeding up
            rate = 0.5 + 3.5 * torch.rand(1, generator=gen).item()
            t = torch.arange(samples) / features.sample_rate
            wave = wave * (
                1.2 + torch.sin(2 * math.pi * rate * t + 6.28 * torch.rand(1, generator=gen))
            )
        waves.append(wave / wave.std().clamp_min(1e-8) * 0.05)
    bank = [log_mel(torch.stack(waves), features).exp()] if waves else []
    if train_log_mels is not None and count - coloured > 0:
        shape = train_log_mels.exp().mean(dim=(0, 2))  # [n_mels] mean speech+pad spectrum
        # mean of 4 unit exponentials: Gamma(4, 4) like a mel bin pooling a few periodogram bins
        gamma = -torch.log(torch.rand(count - coloured, 4, len(shape), frames, generator=gen)).mean(
            1
        )
        bank.append(shape[None, :, None] * gamma)
    return torch.cat(bank).float()


class Augmenter:
    """Callable ``(log_mels, labels) -> (augmented, targets)``; targets are soft when mixup is on."""

    def __init__(
        self,
        settings: AugmentSettings,
        n_classes: int,
        bank: torch.Tensor | None = None,
        seed: int = 0,
    ):
        self.settings = settings
        self.n_classes = n_classes
        self.bank = bank
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen)

    def _chosen(self, batch: int) -> torch.Tensor:
        return (self._rand(batch) < self.settings.prob).float()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, device = self.settings, x.device
        x = x.clone()
        batch, n_mels, frames = x.shape
        if s.gain:
            offset = (2 * self._rand(batch) - 1) * s.gain_db * _DB_TO_LOG * self._chosen(batch)
            x = (x + offset.to(device)[:, None, None]).clamp_min(_LOG_FLOOR)
        if s.noise and self.bank is not None and len(self.bank):
            x = self._add_noise(x)
        if s.time_shift or s.speed or s.pitch:
            x = self._warp(x)
        if s.time_mask:
            x = self._mask(x, axis=2, count=s.time_masks, width=s.time_mask_fraction * frames)
        if s.freq_mask:
            x = self._mask(x, axis=1, count=s.freq_masks, width=s.freq_mask_fraction * n_mels)
        if s.mixup:
            return self._mixup(x, y)
        return x, y

    def _add_noise(self, x: torch.Tensor) -> torch.Tensor:
        s, batch, frames = self.settings, x.shape[0], x.shape[2]
        pick = torch.randint(len(self.bank), (batch,), generator=self.gen)
        noise = self.bank[pick]
        if noise.shape[2] != frames:  # bank built for another clip length: tile/crop to fit
            noise = noise.repeat(1, 1, math.ceil(frames / noise.shape[2]))[:, :, :frames]
        shift = int(torch.randint(frames, (1,), generator=self.gen))
        noise = torch.roll(noise, shift, dims=2).to(x.device)
        low, high = s.noise_snr_db
        snr_db = low + (high - low) * self._rand(batch)
        linear = x.exp()
        scale = (
            linear.mean(dim=(1, 2))
            / noise.mean(dim=(1, 2))
            / torch.pow(10, snr_db / 10).to(x.device)
        )
        scale = scale * self._chosen(batch).to(x.device)
        return torch.log((linear + scale[:, None, None] * noise).clamp_min(LOG_FLOOR))

    def _warp(self, x: torch.Tensor) -> torch.Tensor:
        """Time shift, speed (time stretch) and pitch (mel-axis shift) as one affine resampling."""
        s, batch = self.settings, x.shape[0]
        n_mels, frames = x.shape[1], x.shape[2]
        theta = torch.zeros(batch, 2, 3)
        stretch = torch.ones(batch)
        if s.speed:
            stretch = 1 + (2 * self._rand(batch) - 1) * s.speed_range * self._chosen(batch)
        theta[:, 0, 0] = stretch  # grid x is time: sampling wider = faster speech
        theta[:, 1, 1] = 1.0
        if s.time_shift:
            shift = (2 * self._rand(batch) - 1) * s.shift_fraction * 2 * self._chosen(batch)
            theta[:, 0, 2] = shift
        if s.pitch:
            bins = (2 * self._rand(batch) - 1) * s.pitch_bins * self._chosen(batch)
            theta[:, 1, 2] = bins * 2 / n_mels
        grid = F.affine_grid(theta, [batch, 1, n_mels, frames], align_corners=False).to(x.device)
        out = F.grid_sample(
            x.unsqueeze(1), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return out.squeeze(1)

    def _mask(self, x: torch.Tensor, axis: int, count: int, width: float) -> torch.Tensor:
        batch, size = x.shape[0], x.shape[axis]
        fill = x.mean(dim=(1, 2), keepdim=True)
        positions = torch.arange(size)
        masked = torch.zeros(batch, size, dtype=torch.bool)
        for _ in range(count):
            widths = (self._rand(batch) * width * self._chosen(batch)).long()
            starts = (self._rand(batch) * (size - widths).clamp_min(1)).long()
            masked |= (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
        masked = masked.to(x.device)
        mask = masked[:, None, :] if axis == 2 else masked[:, :, None]
        return torch.where(mask, fill, x)

    def _mixup(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam = float(self.rng.beta(self.settings.mixup_alpha, self.settings.mixup_alpha))
        lam = max(lam, 1 - lam)  # the first clip stays dominant
        perm = torch.randperm(x.shape[0], generator=self.gen).to(x.device)
        onehot = F.one_hot(y, self.n_classes).float()
        return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]
