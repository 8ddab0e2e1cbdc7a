"""One recording in, one fixed-length clip out: decode, mono, resample, trim, normalise, pad.

The Preprocess stage and ``kwsops predict`` (:func:`load_clip`) both run :func:`decode` then
:func:`shape_clip`, so a model sees at inference exactly the kind of clip it was trained on. Only numpy, soundfile and soxr
are used here: no librosa import (slow) and no numba compile in the hot path.

Choices, and why:

- Trim against the louder of two lines: ``top_db`` below the loudest frame (librosa's rule)
  and a few dB above the clip's own noise floor (a low percentile of frame energies). On a
  clean clip the first wins and this is librosa's trim; on a noisy phone recording the noise
  would sit above ``peak - top_db`` and nothing would be cut, so the second wins. Short
  isolated bursts (clicks) do not stretch the span, and a margin is kept on both sides so
  soft onsets and final consonants stay in.
- Peak-normalise the kept word: loudness then carries no label information, 16-bit
  quantisation keeps its full resolution for quiet recordings, and the fixed pad-noise level
  is the same distance below every word.
- Lay the word over a full clip of low noise (not zeros), so there is no digital silence
  anywhere for log-mel features to blow up on, and place it at a random offset seeded by the
  file, so the stored data set covers every position; inference centres the word, the middle
  of that same distribution.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from kwsops.config import AudioSettings
from kwsops.text import one_line

DEFAULT_SETTINGS = AudioSettings()
MAX_INPUT_SECONDS = 30.0  # a command clip; longer inputs are refused before decoding them
MAX_NOISE_SECONDS = 600.0  # a background-noise recording (Speech Commands': 1 to 1.6 min)
# a 30 s clip is a few MB in any format: bigger files are refused unread, and a decode that
# takes longer than this (a crafted or endless stream) is given up between blocks
MAX_INPUT_BYTES = int(os.environ.get("KWSOPS_MAX_INPUT_BYTES", 64 << 20))
MAX_DECODE_SECONDS = float(os.environ.get("KWSOPS_MAX_DECODE_SECONDS", "20"))
# read whole below this (libmpg123 warns on stderr about some mp3 frames read in pieces)
DECODE_BLOCK_SECONDS = 10.0
MIN_SPEECH_SECONDS = 0.1
KEEP_MARGIN_SECONDS = 0.1  # kept on each side of the detected word, within the clip length
FADE_SECONDS = 0.005
NOISE_TABLE_SAMPLES = 1 << 20  # 65 s at 16 kHz: far more distinct beds than clips
PEAK_TARGET_DBFS = -1.0
NOISE_MARGIN_DB = 6.0  # a frame is speech when it is this far above the noise floor...
MIN_DROP_DB = 15.0  # ...but the line never sits closer than this below the loudest frame
FRAME_SECONDS = 0.032
HOP_SECONDS = 0.008
MIN_RUN_FRAMES = 8  # shorter bursts of active frames are clicks unless nothing else is there


class AudioError(ValueError):
    """A recording cannot be used; ``reason`` is the one-line manifest reason."""

    def __init__(self, reason: str, *, source: str | os.PathLike | None = None) -> None:
        self.reason = one_line(reason)
        super().__init__(f"{source}: {self.reason}" if source is not None else self.reason)


@dataclass(frozen=True)
class Clip:
    """A prepared clip: 16-bit samples of exactly ``settings.clip_samples`` and what it came from."""

    pcm: np.ndarray  # int16
    sample_rate_in: int
    channels_in: int
    duration_in: float
    duration_out: float  # seconds of the kept word, before padding


@functools.cache
def _noise_table() -> np.ndarray:
    """Unit Gaussian noise, the same in every process; a clip's bed is a seeded window of it
    (drawing 40k fresh normals per file costs more than decoding a short file)."""
    return np.random.default_rng(0x6B7773).standard_normal(NOISE_TABLE_SAMPLES)


def clip_rng(seed: int, rel_path: str) -> np.random.Generator:
    """The per-file generator: same file and seed give the same clip in any worker."""
    digest = hashlib.sha256(rel_path.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def _libsndfile_message(exc: Exception) -> str:
    message = getattr(exc, "error_string", "") or str(exc)
    message = message.strip().removeprefix("Error :").strip().rstrip(".")
    return one_line(message) or type(exc).__name__


def decode(
    path: str | os.PathLike,
    max_seconds: float = MAX_INPUT_SECONDS,
    max_decode_seconds: float | None = None,
) -> tuple[np.ndarray, int, int, float]:
    """Mono float32 samples, input rate, input channels and input duration of one file.

    Refuses a file over ``MAX_INPUT_BYTES`` unread and one longer than ``max_seconds`` of audio
    before decoding it, and gives up when decoding takes longer than ``max_decode_seconds``
    (``MAX_DECODE_SECONDS``; checked after every 10 s of audio)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise AudioError("empty file")
    if size > MAX_INPUT_BYTES:
        raise AudioError(
            f"too large: {size / 2**20:.1f} MiB > {MAX_INPUT_BYTES / 2**20:.1f} MiB limit"
        )
    limit = MAX_DECODE_SECONDS if max_decode_seconds is None else max_decode_seconds
    deadline = time.monotonic() + limit
    try:
        with sf.SoundFile(path, mode="r") as handle:
            rate, channels, frames = handle.samplerate, handle.channels, handle.frames
            if rate <= 0 or channels <= 0:
                raise AudioError(f"unreadable: bad header ({rate} Hz, {channels} channels)")
            if frames > max_seconds * rate:
                raise AudioError(
                    f"too long: input {frames / rate:.2f} s > {max_seconds:.2f} s limit"
                )
            blocks, size = [], max(1, round(DECODE_BLOCK_SECONDS * rate))
            while len(block := handle.read(size, dtype="float32", always_2d=True)):
                blocks.append(block)
                if time.monotonic() > deadline:
                    raise AudioError(f"too slow to decode: over {limit:g} s")
    except sf.SoundFileError as exc:
        raise AudioError(f"unreadable: {_libsndfile_message(exc)}") from None
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    if data.size == 0:
        raise AudioError("unreadable: no audio frames")
    if not np.isfinite(data).all():
        raise AudioError("unreadable: non-finite samples")
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    return np.ascontiguousarray(mono), rate, channels, len(data) / rate


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return samples
    return soxr.resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def _frame_db(samples: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Mean power of each frame in dB (cumulative sums: linear time, no framing copies)."""
    frame = min(frame, len(samples))
    starts = np.arange(0, len(samples) - frame + 1, hop)
    energy = np.concatenate(([0.0], np.cumsum(np.square(samples, dtype=np.float64))))
    power = (energy[starts + frame] - energy[starts]) / frame
    return 10.0 * np.log10(np.maximum(power, 1e-20))  # -200 dB stands for digital silence


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def speech_bounds(samples: np.ndarray, rate: int, top_db: float) -> tuple[int, int]:
    """First and last sample of the word (end exclusive); (0, 0) when nothing stands out."""
    frame, hop = round(FRAME_SECONDS * rate), round(HOP_SECONDS * rate)
    db = _frame_db(samples, frame, hop)
    peak = float(db.max())
    if peak <= -200.0:
        return 0, 0
    floor = float(np.partition(db, len(db) // 10)[len(db) // 10])  # 10th percentile
    threshold = max(peak - top_db, min(floor + NOISE_MARGIN_DB, peak - MIN_DROP_DB))
    runs = _runs(db > threshold)
    runs = [r for r in runs if r[1] - r[0] >= MIN_RUN_FRAMES] or runs
    if not runs:
        return 0, 0
    frame = min(frame, len(samples))
    return runs[0][0] * hop, (runs[-1][1] - 1) * hop + frame


def shape_clip(
    mono: np.ndarray,
    rate_in: int,
    settings: AudioSettings = DEFAULT_SETTINGS,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, float]:
    """Decoded mono samples to (int16 clip of ``settings.clip_samples``, seconds of word kept).

    The word goes to a random offset drawn from ``rng``, or to the centre when ``rng`` is None.
    Raises :class:`AudioError` with the manifest reason."""
    mono = mono - mono.mean(dtype=np.float64).astype(np.float32)  # a DC offset reads as sound
    peak = float(np.abs(mono).max())
    peak_db = 20.0 * np.log10(peak) if peak > 0 else -np.inf
    if peak_db < settings.silent_peak_dbfs:
        limit = "" if peak == 0 else f" < {settings.silent_peak_dbfs:.1f} dBFS"
        raise AudioError(f"silent: peak {peak_db:.1f} dBFS{limit}")
    rate = settings.sample_rate
    audio = resample(mono, rate_in, rate)
    start, end = speech_bounds(audio, rate, settings.trim_top_db)
    length, clip = end - start, settings.clip_samples
    if length > clip:
        raise AudioError(f"too long: {length / rate:.2f} s > {clip / rate:.2f} s")
    if length < MIN_SPEECH_SECONDS * rate:
        raise AudioError(f"too short: {length / rate:.2f} s < {MIN_SPEECH_SECONDS:.2f} s")
    margin = min(round(KEEP_MARGIN_SECONDS * rate), (clip - length) // 2)
    word = audio[max(0, start - margin) : min(len(audio), end + margin)].astype(np.float64)
    word *= 10.0 ** (PEAK_TARGET_DBFS / 20.0) / np.abs(word).max()
    fade = min(round(FADE_SECONDS * rate), len(word) // 2)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
        word[:fade] *= ramp
        word[-fade:] *= ramp[::-1]
    if rng is None:
        offset, rng = (clip - len(word)) // 2, np.random.default_rng(0)
    else:
        offset = int(rng.integers(0, clip - len(word) + 1))
    if clip <= NOISE_TABLE_SAMPLES:
        bed = int(rng.integers(0, NOISE_TABLE_SAMPLES - clip + 1))
        out = _noise_table()[bed : bed + clip] * 10.0 ** (settings.pad_noise_dbfs / 20.0)
    else:
        out = rng.standard_normal(clip) * 10.0 ** (settings.pad_noise_dbfs / 20.0)
    out[offset : offset + len(word)] += word
    out *= 32767.0
    np.rint(out, out=out)
    np.clip(out, -32768.0, 32767.0, out=out)
    pcm = out.astype(np.int16)
    return pcm, len(word) / rate


def prepare_clip(
    path: str | os.PathLike,
    settings: AudioSettings = DEFAULT_SETTINGS,
    rng: np.random.Generator | None = None,
) -> Clip:
    """:func:`decode` then :func:`shape_clip`; raises :class:`AudioError`."""
    mono, rate_in, channels_in, duration_in = decode(path)
    pcm, duration_out = shape_clip(mono, rate_in, settings, rng)
    return Clip(pcm, rate_in, channels_in, duration_in, duration_out)


def load_clip(path: str | os.PathLike, settings: AudioSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """The clip ``kwsops predict`` feeds the model: the Preprocess chain, word centred,
    as float32 in [-1, 1) exactly as it would read back from a 16-bit output file."""
    try:
        clip = prepare_clip(path, settings)
    except AudioError as exc:
        raise AudioError(exc.reason, source=path) from None
    except OSError as exc:
        raise AudioError(f"unreadable: {exc.strerror or exc}", source=path) from None
    return clip.pcm.astype(np.float32) / 32768.0


def write_wav(path: str | os.PathLike, pcm: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono WAV, canonical 44-byte header; the bytes depend only on the samples.

    Not soundfile: its close() fsyncs every file, which costs more than the whole clip. The
    header is written with its final sizes and the file in one write (no seek back to patch
    it): a quarter of a clip's Preprocess time went to those small writes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.setnframes(len(pcm))
        handle.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    with open(path, "wb", buffering=0) as out:
        out.write(buffer.getbuffer())
