"""kwsops.audio.clip: one recording to one clip, on real files written with soundfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwsops.audio.clip import AudioError, clip_rng, decode, load_clip, shape_clip, speech_bounds
from kwsops.config import AudioSettings

SETTINGS = AudioSettings()
RATE = SETTINGS.sample_rate


def word(rate: int, seconds: float = 0.5) -> np.ndarray:
    """A vowel-like harmonic glide ending in a fricative hiss, peak 1.0."""
    n = round(rate * seconds)
    t = np.arange(n) / rate
    phase = 2 * np.pi * np.cumsum(140.0 * (1 + 0.3 * t / seconds)) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    hiss = np.random.default_rng(7).standard_normal(n) * 0.3 * (t > 0.75 * seconds)
    y = (voiced + hiss) * np.sin(np.pi * np.arange(n) / n) ** 0.5
    return y / np.abs(y).max()


def recording(
    rate: int,
    lead: float = 0.8,
    seconds: float = 0.5,
    tail: float = 0.8,
    level_db: float = -6.0,
    noise_db: float = -60.0,
) -> np.ndarray:
    y = np.concatenate(
        [
            np.zeros(round(lead * rate)),
            word(rate, seconds) * 10 ** (level_db / 20),
            np.zeros(round(tail * rate)),
        ]
    )
    y += np.random.default_rng(1).standard_normal(len(y)) * 10 ** (noise_db / 20)
    return y.astype(np.float32)


def loud_span(clip: np.ndarray, rate: int = RATE, threshold: float = 0.05) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(clip) > threshold)
    return loud[0] / rate, loud[-1] / rate


def test_trim_finds_the_word_in_clean_and_noisy_recordings() -> None:
    for noise_db in (-200.0, -60.0, -40.0, -30.0):
        y = recording(RATE, lead=1.5, tail=1.5, noise_db=noise_db)
        start, end = speech_bounds(y, RATE, SETTINGS.trim_top_db)
        # the word spans 1.5-2.0 s; librosa's peak-relative trim keeps all 3.5 s from -40 dB up
        assert 1.45 <= start / RATE <= 1.51, noise_db
        assert 1.99 <= end / RATE <= 2.05, noise_db


def test_trim_ignores_a_click_far_from_the_word() -> None:
    y = recording(RATE, lead=1.0, tail=1.0)
    y[800:880] += 0.5
    start, end = speech_bounds(y, RATE, SETTINGS.trim_top_db)
    assert start / RATE > 0.9 and end / RATE < 1.6


def test_clip_shape_level_and_placement() -> None:
    quiet = recording(RATE, level_db=-35.0)
    loud = recording(RATE, level_db=-3.0)
    clips = [shape_clip(y, RATE, SETTINGS, clip_rng(42, "catch/a.wav")) for y in (quiet, loud)]
    for pcm, kept in clips:
        assert pcm.dtype == np.int16 and pcm.shape == (SETTINGS.clip_samples,)
        assert 0.5 < kept < 0.8  # the word plus a 0.1 s margin each side, silence gone
        peak_db = 20 * np.log10(np.abs(pcm).max() / 32768)
        assert -1.3 < peak_db < -0.7  # peak-normalised whatever the input level
        assert np.count_nonzero(pcm == 0) < 0.1 * len(pcm)  # a noise bed, no digital silence
    offsets = {
        loud_span(shape_clip(loud, RATE, SETTINGS, clip_rng(42, f"catch/{i}.wav"))[0] / 32768)[0]
        for i in range(8)
    }
    assert len(offsets) > 4  # seeded random placement, not always the same position


def test_clip_is_reproducible_per_file_and_seed() -> None:
    y = recording(RATE)
    first, _ = shape_clip(y, RATE, SETTINGS, clip_rng(42, "gun/a.wav"))
    again, _ = shape_clip(y, RATE, SETTINGS, clip_rng(42, "gun/a.wav"))
    other, _ = shape_clip(y, RATE, SETTINGS, clip_rng(43, "gun/a.wav"))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("name", "fmt", "subtype", "rate", "channels"),
    [
        ("u8.wav", "WAV", "PCM_U8", 8000, 1),
        ("s16.WAV", "WAV", "PCM_16", 44100, 2),
        ("s24.wav", "WAV", "PCM_24", 48000, 1),
        ("float.wav", "WAV", "FLOAT", 48000, 2),
        ("s16_8k.wav", "WAV", "PCM_16", 8000, 2),
        ("a.flac", "FLAC", "PCM_16", 44100, 2),
        ("a.ogg", "OGG", "VORBIS", 44100, 1),
        ("a.opus", "OGG", "OPUS", 48000, 2),
        ("a.mp3", "MP3", "MPEG_LAYER_III", 44100, 2),
        ("a8k.mp3", "MP3", "MPEG_LAYER_III", 8000, 1),
    ],
)
def test_every_container_decodes_to_the_same_kind_of_clip(
    tmp_path: Path, name: str, fmt: str, subtype: str, rate: int, channels: int
) -> None:
    mono = recording(rate, lead=1.2, tail=1.6)  # 3.3 s: only kept because silence is trimmed
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path = tmp_path / name
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    clip = load_clip(path, SETTINGS)
    assert clip.dtype == np.float32 and clip.shape == (SETTINGS.clip_samples,)
    start, end = loud_span(clip)
    middle = SETTINGS.clip_seconds / 2
    assert 0.4 < end - start < 0.75  # the whole word is there, and little else
    assert abs((start + end) / 2 - middle) < 0.1  # centred for inference
    assert np.sqrt(np.mean(clip**2)) > 0.05  # energy of the word present


def test_load_clip_errors_name_the_file(tmp_path: Path) -> None:
    text = tmp_path / "note.wav"
    text.write_text("not audio\n")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE, np.float32), RATE)
    for path, reason in ((text, "unreadable: "), (empty, "empty file"), (silent, "silent: ")):
        with pytest.raises(AudioError) as caught:
            load_clip(path, SETTINGS)
        assert str(path) in str(caught.value) and caught.value.reason.startswith(reason)
        assert "\n" not in caught.value.reason and str(tmp_path) not in caught.value.reason


def test_a_dc_offset_is_not_sound(tmp_path: Path) -> None:
    path = tmp_path / "dc.wav"
    sf.write(path, np.full(RATE, 0.4, np.float32), RATE, subtype="PCM_16")
    with pytest.raises(AudioError, match="silent"):
        load_clip(path, SETTINGS)


def test_decode_refuses_a_huge_file_unread_and_gives_up_a_slow_decode(tmp_path: Path) -> None:
    huge = tmp_path / "huge.wav"
    with open(huge, "wb") as handle:  # sparse: 80 MiB on paper, nothing to read
        handle.truncate(80 << 20)
    with pytest.raises(AudioError, match=r"^too large: 80\.0 MiB > 64\.0 MiB limit$"):
        decode(huge)
    long = tmp_path / "long.flac"
    samples = recording(RATE, lead=2.0, tail=2.0)
    sf.write(long, samples, RATE)
    mono, rate, channels, seconds = decode(long)  # read block by block, same samples
    assert (rate, channels) == (RATE, 1) and np.allclose(mono, sf.read(long, dtype="float32")[0])
    with pytest.raises(AudioError, match=r"^too slow to decode: over 0 s$"):
        decode(long, max_decode_seconds=0.0)
