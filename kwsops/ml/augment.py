"""Spectrogram-domain augmentation, batched, seeded, each part switchable by name for ablations.

Everything works on natural-log mel power ``[B, n_mels, frames]`` before the model's per-clip
normalisation. Order: edge cuts and context (:mod:`kwsops.ml.windows`: windows like the
detector's, on the clean clip) -> gain -> eq (microphone colour, band limits) -> reverb -> noise -> time
shift / speed / pitch (one resampling grid) -> time and frequency masks -> mixup. Gain is an
offset in the log domain; after per-clip normalisation it only matters through the log floor and
the noise it is mixed with, which is the point: the model must not care about loudness.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from kwsops.config import FeatureSettings
from kwsops.keywords import UNKNOWN, is_word
from kwsops.ml.features import LOG_FLOOR, log_mel
from kwsops.ml.store import FeatureStore, Rows, mean_power
from kwsops.ml.windows import edge_cuts, in_context

AUGMENTATIONS: tuple[str, ...] = (
    "edge_cut",
    "context",
    "gain",
    "eq",
    "reverb",
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

    edge_cut: bool = True
    context: bool = True
    gain: bool = True
    eq: bool = True
    reverb: bool = True
    noise: bool = True
    time_shift: bool = True
    speed: bool = True
    pitch: bool = True
    time_mask: bool = True
    freq_mask: bool = True
    mixup: bool = False
    prob: float = 0.5  # chance each enabled augmentation touches a given clip
    gain_db: float = 10.0  # uniform +- in power dB
    eq_db: float = 5.0  # +- amplitude of each of 3 smooth cosine bumps along the mel axis
    lowpass_hz: tuple[float, float] = (3000.0, 8000.0)  # random 2nd-order mic band limits
    highpass_hz: tuple[float, float] = (50.0, 450.0)
    reverb_rt60: tuple[float, float] = (0.1, 0.6)  # seconds
    reverb_wet: tuple[float, float] = (0.05, 0.6)  # tail power relative to the direct sound
    noise_snr_db: tuple[float, float] = (3.0, 25.0)
    shift_fraction: float = 0.1  # max +- time shift, share of the clip
    # as wide as voices differ: speaking rate and vocal tract length vary by about a quarter
    # between speakers (worst held-out speaker 0.80 -> 0.87 on the demo, benchmarks/pipeline.py)
    speed_range: float = 0.3  # time stretch factor in [1 - r, 1 + r]
    pitch_range: float = 0.25  # vocal tract length warp of the frequency axis, [1 - r, 1 + r]
    time_masks: int = 2
    time_mask_fraction: float = 0.08  # max width of one mask, share of the frames
    freq_masks: int = 2
    freq_mask_fraction: float = 0.15  # max width of one mask, share of the mel bins
    mixup_alpha: float = 0.3
    # a word's windows at a stream's hop: about one in six holds most of it cut off (unknown)
    edge_cut_prob: float = 0.15
    cut_fraction: tuple[float, float] = (0.5, 0.95)  # of the word beyond the edge
    context_prob: float = 0.4  # words amid other speech
    context_db: tuple[float, float] = (-12.0, 3.0)  # the other speech against the word

    def __post_init__(self) -> None:
        for f in fields(self):
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))

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


def _fft_size(n: int) -> int:
    """The smallest 5-smooth length >= ``n`` (2^a 3^b 5^c): an FFT of it is about as fast as of
    a power of two, and often half as long (a 261-frame clip: 540, not 1024)."""
    size = n
    while True:
        rest = size
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += 1


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10 ** (m / 2595.0) - 1.0)


def mel_centres(features: FeatureSettings) -> torch.Tensor:
    """Centre frequency (Hz) of each mel band, as torchaudio's HTK mel filter bank places them."""
    points = torch.linspace(
        float(_hz_to_mel(torch.tensor(features.f_min))),
        float(_hz_to_mel(torch.tensor(features.f_max))),
        features.n_mels + 2,
        dtype=torch.float64,
    )
    return _mel_to_hz(points[1:-1])


def noise_bank(
    features: FeatureSettings,
    frames: int,
    train_log_mels: torch.Tensor | Rows | FeatureStore | None = None,
    count: int = 24,
    seed: int = 0,
    recorded: torch.Tensor | None = None,
) -> torch.Tensor:
    """Linear mel power noise clips ``[count (+ recorded), n_mels, frames]``.

    Half synthetic coloured noise (white, pink, brown, blue; some amplitude-modulated) run through
    the real ``log_mel``; half speech-shaped noise whose spectrum is the mean of the training
    clips (``train_log_mels``), with random per-bin fluctuation like a periodogram's. Then the
    ``recorded`` background noise (log-mels of clip-length pieces, e.g. Speech Commands'
    ``_background_noise_``), when there is any: real rooms, machines and streets.
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
        shape = mean_power(train_log_mels)  # [n_mels] mean speech+pad spectrum, read in batches
        # mean of 4 unit exponentials: Gamma(4, 4) like a mel bin pooling a few periodogram bins
        uniform = torch.rand(count - coloured, 4, len(shape), frames, generator=gen)
        gamma = -torch.log(uniform.clamp_min(1e-12)).mean(dim=1)
        bank.append(shape[None, :, None] * gamma)
    if recorded is not None and len(recorded):
        if recorded.shape[1] != features.n_mels:
            raise ValueError(
                f"recorded noise has {recorded.shape[1]} mel bands, settings say {features.n_mels}"
            )
        bank.append(recorded.float().exp())
    return torch.cat(bank).float()


class Augmenter:
    """Callable ``(log_mels, labels) -> (augmented, targets)``; targets are soft when mixup is on."""

    def __init__(
        self,
        settings: AugmentSettings,
        n_classes: int,
        features: FeatureSettings,
        bank: torch.Tensor | None = None,
        seed: int = 0,
        label_names: list[str] | None = None,
    ):
        self.settings = settings
        self.n_classes = n_classes
        names = list(label_names or [])
        # windows like the detector's need unknown speech to cut words into and to mix in
        self.unknown = names.index(UNKNOWN) if UNKNOWN in names else None
        self.words = torch.tensor([is_word(name) for name in names], dtype=torch.bool)
        self.features = features
        self.centres = mel_centres(features)  # Hz, float64
        self.bank = bank
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen)

    def _uniform(self, batch: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * self._rand(batch)

    def _chosen(self, batch: int) -> torch.Tensor:
        return (self._rand(batch) < self.settings.prob).float()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        batch, n_mels, frames = x.shape
        if n_mels != self.features.n_mels:
            raise ValueError(
                f"features have {n_mels} mel bands, settings say {self.features.n_mels}"
            )
        if self.unknown is not None and (s.edge_cut or s.context):
            x, y = self._windows(x, y)
        if s.gain:
            offset = (2 * self._rand(batch) - 1) * s.gain_db * _DB_TO_LOG * self._chosen(batch)
            x = (x + offset.to(x.device)[:, None, None]).clamp_min(_LOG_FLOOR)
        if s.eq:
            x = (x + self._eq_curve(batch).to(x.device)[:, :, None]).clamp_min(_LOG_FLOOR)
        noise = s.noise and self.bank is not None and len(self.bank) > 0
        if s.reverb or noise:  # both in linear power: one exp and one log for the two
            linear = x.exp()
            if s.reverb:
                linear = self._reverb(linear)
            if noise:
                linear = self._add_noise(linear)
            x = torch.log(linear.clamp_min(LOG_FLOOR))
        if s.time_shift or s.speed or s.pitch:
            x = self._warp(x)
        if s.time_mask or s.freq_mask:
            x = self._masks(x)
        if s.mixup:
            return self._mixup(x, y)
        return x, y

    def _windows(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge cuts and context (:mod:`kwsops.ml.windows`) on the batch's word clips."""
        s, batch = self.settings, x.shape[0]
        word = self.words.to(y.device)[y]
        if s.context:
            pool = torch.nonzero(y == self.unknown).flatten()
            chosen = (self._rand(batch) < s.context_prob).to(x.device) & word
            pick = torch.randint(max(1, len(pool)), (batch,), generator=self.gen)
            level = self._uniform(batch, *s.context_db).to(x.device)
            if len(pool):
                x = in_context(x, chosen, x[pool[pick.to(pool.device)]], level)
        if s.edge_cut:
            chosen = (self._rand(batch) < s.edge_cut_prob).to(x.device) & word
            fraction = self._uniform(batch, *s.cut_fraction).to(x.device)
            to_left = (self._rand(batch) < 0.5).to(x.device)
            x, y = edge_cuts(x, y, chosen, fraction, to_left, self.unknown)
        return x, y

    def _eq_curve(self, batch: int) -> torch.Tensor:
        """Log-gain per mel band: smooth random bumps plus a random 2nd-order band limit."""
        s, n_mels = self.settings, len(self.centres)
        position = torch.linspace(0, math.pi, n_mels)
        curve = torch.zeros(batch, n_mels)
        for k in (1, 2, 3):
            amp = (2 * self._rand(batch) - 1) * s.eq_db
            curve += amp[:, None] * torch.cos(
                k * position + 2 * math.pi * self._rand(batch)[:, None]
            )
        f = self.centres.float()[None, :]
        low = self._uniform(batch, *s.lowpass_hz)[:, None]
        high = self._uniform(batch, *s.highpass_hz)[:, None]
        limits = -10 * torch.log10((1 + (f / low) ** 4) * (1 + (high / f) ** 4))
        curve += limits * (self._rand(batch) < 0.5).float()[:, None]
        return curve * _DB_TO_LOG * self._chosen(batch)[:, None]

    def _reverb(self, linear: torch.Tensor) -> torch.Tensor:
        """A room tail on linear mel power: each band convolved with an exponential decay (FFT,
        causal). The tail stops at -90 dB of the longest rt60 (what it leaves out is below
        float32's resolution of the sum), so the FFT is ~360 long for 261 frames, not 540."""
        s, batch, frames = self.settings, linear.shape[0], linear.shape[2]
        hop_s = self.features.hop_length / self.features.sample_rate
        rt60 = self._uniform(batch, *s.reverb_rt60)
        wet = self._uniform(batch, *s.reverb_wet)
        chosen = torch.nonzero(self._chosen(batch)).flatten()
        if len(chosen) == 0:
            return linear
        length = min(frames, math.ceil(1.5 * max(s.reverb_rt60) / hop_s) + 1)
        decay = torch.pow(10.0, -6.0 * hop_s / rt60[chosen])  # power per frame: -60 dB at rt60
        tail = decay[:, None] ** torch.arange(length, dtype=torch.float32)[None, :]
        tail[:, 0] = 0.0
        tail = tail / tail.sum(dim=1, keepdim=True).clamp_min(1e-8)
        rows = chosen.to(linear.device)
        direct = linear[rows]
        n = _fft_size(frames + length - 1)  # linear, not circular, convolution
        spectrum = (
            torch.fft.rfft(direct, n=n) * torch.fft.rfft(tail.to(linear.device), n=n)[:, None]
        )
        reverberant = torch.fft.irfft(spectrum, n=n)[..., :frames].clamp_min(0)
        out = linear.clone()
        out[rows] = direct + wet[chosen].to(linear.device)[:, None, None] * reverberant
        return out

    def _add_noise(self, linear: torch.Tensor) -> torch.Tensor:
        """Noise from the bank mixed into linear mel power at a random SNR."""
        s, batch, frames = self.settings, linear.shape[0], linear.shape[2]
        pick = torch.randint(len(self.bank), (batch,), generator=self.gen)
        noise = self.bank[pick]
        if noise.shape[2] != frames:  # bank built for another clip length: tile/crop to fit
            noise = noise.repeat(1, 1, math.ceil(frames / noise.shape[2]))[:, :, :frames]
        shift = int(torch.randint(frames, (1,), generator=self.gen))
        noise = torch.roll(noise, shift, dims=2).to(linear.device)
        snr = torch.pow(10, self._uniform(batch, *s.noise_snr_db) / 10).to(linear.device)
        scale = linear.mean(dim=(1, 2)) / noise.mean(dim=(1, 2)) / snr
        scale = scale * self._chosen(batch).to(linear.device)
        return linear + scale[:, None, None] * noise

    def _warp(self, x: torch.Tensor) -> torch.Tensor:
        """Time shift, speed (time stretch) and pitch (vocal tract length warp) in one resampling."""
        s, batch = self.settings, x.shape[0]
        n_mels, frames = x.shape[1], x.shape[2]
        stretch, shift, alpha = torch.ones(batch), torch.zeros(batch), torch.ones(batch)
        if s.speed:  # sampling a wider span of the input = faster speech
            stretch += (2 * self._rand(batch) - 1) * s.speed_range * self._chosen(batch)
        if s.time_shift:
            shift = (2 * self._rand(batch) - 1) * s.shift_fraction * 2 * self._chosen(batch)
        if s.pitch:
            alpha += (2 * self._rand(batch) - 1) * s.pitch_range * self._chosen(batch)
        time = (torch.arange(frames) * 2 + 1) / frames - 1  # pixel centres in [-1, 1]
        grid_t = time[None, :] * stretch[:, None] + shift[:, None]  # [B, T]
        # the band at f now shows what the speaker had at f / alpha
        mel = _hz_to_mel(self.centres[None, :] / alpha[:, None].double())
        first = _hz_to_mel(self.centres[:1])
        step = _hz_to_mel(self.centres[1:2]) - first
        index = (mel - first) / step  # fractional source band, [B, M]
        grid_m = ((index * 2 + 1) / n_mels - 1).float()
        grid = torch.stack(
            [grid_t[:, None, :].expand(-1, n_mels, -1), grid_m[:, :, None].expand(-1, -1, frames)],
            dim=-1,
        )
        # what slides in from outside the clip is each band's background level, not a copy of
        # the edge frame (which would draw stripes) nor a mirror image (which could repeat speech)
        window = min(8, frames)  # the quietest ~80 ms of each band (mean of 8 frames, hop 4)
        background = x.unfold(2, window, max(1, window // 2)).mean(-1).amin(dim=2, keepdim=True)
        out = F.grid_sample(
            (x - background).unsqueeze(1),
            grid.to(x.device),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        return out.squeeze(1) + background

    def _masks(self, x: torch.Tensor) -> torch.Tensor:
        """Time and frequency masks, filled with each clip's mean level, in one pass."""
        s, (batch, n_mels, frames) = self.settings, x.shape
        fill = x.mean(dim=(1, 2), keepdim=True)
        mask = torch.zeros(batch, n_mels, frames, dtype=torch.bool)
        if s.time_mask:
            mask |= self._spans(batch, frames, s.time_masks, s.time_mask_fraction)[:, None, :]
        if s.freq_mask:
            mask |= self._spans(batch, n_mels, s.freq_masks, s.freq_mask_fraction)[:, :, None]
        return torch.where(mask.to(x.device), fill, x)

    def _spans(self, batch: int, size: int, count: int, fraction: float) -> torch.Tensor:
        """``[batch, size]``: ``count`` random spans of up to ``fraction`` of ``size`` each."""
        positions, width = torch.arange(size), fraction * size
        masked = torch.zeros(batch, size, dtype=torch.bool)
        for _ in range(count):
            widths = (self._rand(batch) * width * self._chosen(batch)).long()
            starts = (self._rand(batch) * (size - widths).clamp_min(1)).long()
            masked |= (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
        return masked

    def _mixup(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam = float(self.rng.beta(self.settings.mixup_alpha, self.settings.mixup_alpha))
        lam = max(lam, 1 - lam)  # the first clip stays dominant
        perm = torch.randperm(x.shape[0], generator=self.gen).to(x.device)
        onehot = F.one_hot(y, self.n_classes).float()
        return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]
