"""``_silence_`` clips: what a window of noise, or of nothing, looks like to the model.

Two sources, both always at hand: clip-length pieces of the background-noise recordings
(Speech Commands' ``_background_noise_``), and generated noise (white, pink, brown, mains hum,
slowly modulated) at levels from near digital silence to loud. Each clip is a pure function of
the seed and its index, so Preprocess writes the same bytes in any run.
"""

from __future__ import annotations

import numpy as np

from kwsops.config import AudioSettings

GENERATED_SOURCE = "{class_}/generated-{index:04d}"  # the manifest's source of a generated clip
KINDS = ("white", "pink", "brown", "hum", "modulated")
LEVEL_DBFS = (-65.0, -12.0)  # RMS of a generated clip, drawn uniformly in dB
MAX_PIECES_PER_RECORDING = 64


def generated_noise(index: int, settings: AudioSettings, seed: int = 42) -> np.ndarray:
    """Float32 noise of ``settings.clip_samples``: one of KINDS at a drawn level."""
    rng = np.random.default_rng([seed, 0x511E, index])
    n, rate = settings.clip_samples, settings.sample_rate
    kind = KINDS[index % len(KINDS)]
    white = rng.standard_normal(n)
    if kind in ("pink", "brown", "modulated"):
        freqs = np.maximum(np.fft.rfftfreq(n, 1 / rate), 20.0)
        slope = {"pink": 0.5, "brown": 1.0, "modulated": rng.uniform(0.0, 1.0)}[kind]
        noise = np.fft.irfft(np.fft.rfft(white) / freqs**slope, n)
        if kind == "modulated":  # a fan, traffic, wind: slow swells
            t = np.arange(n) / rate
            noise *= 1.2 + np.sin(2 * np.pi * rng.uniform(0.3, 4.0) * t + rng.uniform(0, 6.3))
    elif kind == "hum":
        t, mains = np.arange(n) / rate, rng.choice([50.0, 60.0])
        noise = 0.1 * white
        for k in range(1, 6):
            noise += (
                rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3))
            )
    else:
        noise = white
    level = 10 ** (rng.uniform(*LEVEL_DBFS) / 20)
    noise *= level / (np.sqrt(np.mean(noise**2)) + 1e-12)
    return np.clip(noise, -1.0, 1.0).astype(np.float32)


def noise_pieces(audio: np.ndarray, samples: int, seed: int, rel: str) -> list[np.ndarray]:
    """Clip-length pieces of a noise recording (float samples at the clip rate), each at a
    gain drawn per piece (a noise window can be loud or faint); at most
    MAX_PIECES_PER_RECORDING, spread over the recording."""
    count = len(audio) // samples
    if count == 0:
        return [np.resize(audio, samples).astype(np.float32)] if len(audio) else []
    picks = np.unique(np.linspace(0, count - 1, min(count, MAX_PIECES_PER_RECORDING)).round())
    rng = np.random.default_rng([seed, 0x9015E, len(rel), sum(rel.encode())])
    out = []
    for k in picks.astype(int):
        piece = audio[k * samples : (k + 1) * samples].astype(np.float64)
        peak = float(np.abs(piece).max())
        if peak > 0:
            piece *= 10 ** (rng.uniform(-30.0, -1.0) / 20) / peak
        out.append(piece.astype(np.float32))
    return out
