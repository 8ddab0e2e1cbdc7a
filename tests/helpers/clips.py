"""Tone "recordings" that a tiny model learns in seconds, and Preprocess-like output of them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

RATE = 16_000
MANIFEST_FIELDS = [
    "source", "label", "speaker", "status", "reason", "output",
    "duration_in", "duration_out", "sample_rate_in", "channels_in",
]  # fmt: skip


def tone_clip(label: int, speaker: int, take: int, seconds: float = 1.0) -> np.ndarray:
    """An easy, speaker-coloured pattern per label: label k is a tone in band k, swept up or down."""
    rng = np.random.default_rng(1000 * speaker + 10 * label + take)
    t = np.arange(int(RATE * seconds)) / RATE
    base = (400.0, 1400.0, 3200.0, 5200.0, 800.0, 2200.0)[label] * (0.92 + 0.02 * speaker)
    sweep = base * (1 + (0.4 if label % 2 else -0.3) * t / seconds)
    onset = 0.1 + 0.2 * rng.random()
    envelope = ((t > onset) & (t < onset + 0.5)).astype(float)
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(sweep) / RATE) * envelope
    return (wave + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def write_clips(
    root: Path, labels=("catch", "gun", "rock"), speakers: int = 8, takes: int = 4
) -> Path:
    """Preprocess-like output: <label>/<speaker>__<label>_<n>.wav plus manifest.csv."""
    rows = []
    for li, label in enumerate(labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        for spk in range(speakers):
            for take in range(takes):
                name = f"spk{spk:02d}__{label}_{take:03d}.wav"
                sf.write(root / label / name, tone_clip(li, spk, take), RATE, subtype="PCM_16")
                rows.append({
                    "source": f"{label}/{name}", "label": label, "speaker": f"spk{spk:02d}",
                    "status": "kept", "reason": "", "output": f"{label}/{name}",
                    "duration_in": "1.0", "duration_out": "0.5",
                    "sample_rate_in": str(RATE), "channels_in": "1",
                })  # fmt: skip
    rows.append({**rows[0], "source": "bad.m4a", "status": "rejected", "output": "", "label": ""})
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["source"]))
    return root


def tiny_spec_dir(factory: pytest.TempPathFactory, labels=("catch", "gun", "rock")) -> Path:
    """Spectrograms of 8 speakers x 4 takes of the tone clips: the training tests' data."""
    from kwsops.ml.features import make_spectrogram_dataset

    output = write_clips(factory.mktemp("output"), labels=labels, speakers=8, takes=4)
    spec = factory.mktemp("spec")
    make_spectrogram_dataset(output, spec)
    return spec
