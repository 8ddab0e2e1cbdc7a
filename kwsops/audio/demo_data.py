"""Demo data: the command words spoken by synthetic eSpeak NG speakers through varied
"phones" (mic, room, noise, level), saved as a phone's mix of wav, flac, ogg/vorbis, opus, mp3
and WhatsApp notes, and unknown speech in the same voices under ``_unknown_/``: other words,
near misses and sentences (:mod:`kwsops.audio.demo_texts`). Each file is a pure function of
(seed, label, index)."""

from __future__ import annotations

import contextlib
import io
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import fft, signal

from kwsops.atomic import TMP_MARK, atomic_write_bytes
from kwsops.audio.demo_texts import NEAR_MISSES, UNKNOWN_KINDS, unknown_text
from kwsops.audio.espeak import VoiceSettings, get_engine
from kwsops.config import DEMO_LABELS, WHATSAPP_DIR
from kwsops.keywords import UNKNOWN
from kwsops.progress import ProgressFn, no_progress

LANGUAGES = ("en-us", "en-gb-x-rp", "en", "en-029", "en-gb-scotland", "en-us-nyc")
LANGUAGES += ("en-gb-x-gbclan", "en-gb-x-gbcwmd")
# voices/!v variants that keep the words apart (leave-one-voice-out DTW check); whisper is
# left out: one unvoiced speaker held out in a test split cannot be learned from the others
VARIANTS = ("m3", "f2", "klatt2", "croak", "f4", "Andy", "m7", "belinda", "klatt4", "f1")
VARIANTS += ("edward", "Annie", "m5", "steph", "grandpa", "f5", "m1", "f3", "klatt6", "Gene")
TEXT_FORMS = ("{}", "{}.", "{}!", "{}?", "<speak><emphasis>{}</emphasis></speak>")
TEXT_WEIGHTS = (0.35, 0.2, 0.2, 0.15, 0.1)
NOISES = ("white", "pink", "brown", "hum", "babble")
WHATSAPP_SHARE = 0.15
# unknown speech against one word's recordings: the near misses are what a spotter confuses,
# and a stream is mostly other speech (measured: 162 unknown clips left near misses at 0.9)
UNKNOWN_PER_LABEL = 2
EVENT_SHARE = 0.008  # each of "burst" and "long": realistic oddities, still processable
MAX_SECONDS = 2.5  # whole file, except the rare "long" recordings
# kind: (container, subtypes, subtype weights, sample rates, stereo share, extension)
FORMATS: dict[str, tuple] = {
    "wav": ("WAV", ("PCM_U8", "PCM_16", "PCM_24", "FLOAT"), (0.12, 0.5, 0.16, 0.22),
            (8000, 16000, 44100, 48000), 0.25, "wav"),
    "flac": ("FLAC", ("PCM_16", "PCM_24"), (0.7, 0.3), (16000, 22050, 44100, 48000), 0.25, "flac"),
    "ogg/vorbis": ("OGG", ("VORBIS",), (1.0,), (16000, 22050, 44100, 48000), 0.25, "ogg"),
    "opus": ("OGG", ("OPUS",), (1.0,), (8000, 12000, 16000, 24000, 48000), 0.1, "opus"),
    "mp3": ("MP3", ("MPEG_LAYER_III",), (1.0,), (16000, 22050, 24000, 32000, 44100, 48000),
            0.25, "mp3"),
    "ogg/opus": ("OGG", ("OPUS",), (1.0,), (16000, 48000), 0.0, "ogg"),  # WhatsApp's .ogg notes
}  # fmt: skip
FORMAT_WEIGHTS = {"wav": 0.36, "flac": 0.15, "ogg/vorbis": 0.16, "opus": 0.15, "mp3": 0.18}
WHATSAPP_WEIGHTS = {"opus": 0.6, "ogg/opus": 0.4}
_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))  # byte -> bits reversed
# Latin-hypercube ranges: the speakers cover each range evenly instead of clumping
SPEAKER_RANGES = {"pitch": (20, 80), "pitch_range": (15, 90), "rate": (125, 215),
                  "vtlp": (0.88, 1.14), "highpass_hz": (60, 400), "lowpass_hz": (3200, 9000),
                  "eq_hz": (700, 3500), "eq_db": (-6, 8)}  # fmt: skip


@dataclass(frozen=True)
class Speaker:
    """A fixed synthetic voice plus the phone and room it records with."""

    name: str
    voice: str  # eSpeak language+variant
    pitch: float  # eSpeak 0..100
    pitch_range: float  # eSpeak 0..100
    rate: float  # words per minute
    vtlp: float  # formant and tempo scale by resampling (vocal tract length)
    highpass_hz: float  # mic colour: a band and one peaking EQ
    lowpass_hz: float
    eq_hz: float
    eq_db: float
    drive: float  # soft clipping of a cheap mic, 1 = none
    reverb_rt60: float  # 0 = dry room


@dataclass(frozen=True)
class DemoFile:
    label: str
    speaker: Speaker
    relpath: str  # posix, relative to the input folder
    kind: str  # key of FORMATS, or "ogg/opus" for WhatsApp notes saved as .ogg
    container: str
    subtype: str
    sample_rate: int
    channels: int
    quality: float | None  # libsndfile compression_level
    event: str  # "", "burst" (a knock near the word) or "long" (long, quiet lead-in)
    seed: tuple[int, ...]
    text: str = ""  # what is said, when it is not the label (unknown speech)


@dataclass
class DemoSummary:
    per_label: dict[str, int]
    per_format: dict[str, int]
    per_speaker: dict[str, int]
    total_files: int
    written: int
    skipped: int
    seconds: float


def speaker_profiles(count: int, seed: int = 42) -> list[Speaker]:
    """``count`` distinct speakers: voice and variant cycle, the rest spreads over ranges."""
    rng = np.random.default_rng([seed, 0x5EA4E4])
    spread = {
        key: low + (high - low) * (rng.permutation(count) + rng.random(count)) / count
        for key, (low, high) in SPEAKER_RANGES.items()
    }
    width = max(2, len(str(count)))
    return [
        Speaker(
            name=f"spk{i + 1:0{width}d}",
            voice=f"{LANGUAGES[i % len(LANGUAGES)]}+{VARIANTS[i % len(VARIANTS)]}",
            drive=float(rng.choice([1.0, 1.0, 1.5, 2.5])),
            reverb_rt60=round(float(rng.choice([0.0, 0.0, rng.uniform(0.1, 0.45)])), 2),
            **{key: round(float(values[i]), 3) for key, values in spread.items()},
        )
        for i in range(count)
    ]


def plan_demo_files(
    per_label: int = 144,
    speakers: int = 16,
    seed: int = 42,
    unknown: int | None = None,
    near_misses: tuple[str, ...] = NEAR_MISSES,
) -> list[DemoFile]:
    """Every file of the set: where it goes and how it is encoded (no audio yet). ``unknown``
    recordings of unknown speech (default: UNKNOWN_PER_LABEL x ``per_label``), a third of
    each kind."""
    profiles = speaker_profiles(speakers, seed)
    unknown = UNKNOWN_PER_LABEL * per_label if unknown is None else unknown
    width = max(3, len(str(max(per_label, unknown) - 1)))
    plan = []
    for label in (*DEMO_LABELS, UNKNOWN):
        for index in range(unknown if label == UNKNOWN else per_label):
            file_seed = (seed, zlib.crc32(label.encode()), index)
            rng = np.random.default_rng([*file_seed, 0])
            speaker = profiles[index % speakers]
            whatsapp = rng.random() < WHATSAPP_SHARE  # voice notes: Opus, .opus or .ogg
            weights = WHATSAPP_WEIGHTS if whatsapp else FORMAT_WEIGHTS
            kind = str(rng.choice(list(weights), p=list(weights.values())))
            container, subtypes, subtype_odds, rates, stereo, ext = FORMATS[kind]
            subtype, rate = str(rng.choice(subtypes, p=subtype_odds)), int(rng.choice(rates))
            channels = 1 + int(rng.random() < stereo)
            quality = None if kind == "wav" else round(float(rng.uniform(0.0, 0.7)), 2)
            folder = f"{WHATSAPP_DIR}/{label}" if whatsapp else label
            odds = [1 - 2 * EVENT_SHARE, EVENT_SHARE, EVENT_SHARE]
            event = str(rng.choice(["", "burst", "long"], p=odds))
            subtype = "PCM_16" if event == "long" and subtype == "PCM_U8" else subtype
            text, stem = "", label
            if label == UNKNOWN:  # a third of each kind, each speaker saying every kind
                what = UNKNOWN_KINDS[index % len(UNKNOWN_KINDS)]
                text = unknown_text(what, index // len(UNKNOWN_KINDS), near_misses)
                event, stem = "", what.replace(" ", "-")
            relpath = f"{folder}/{speaker.name}__{stem}_{index:0{width}d}.{ext}"
            plan.append(DemoFile(label, speaker, relpath, kind, container, subtype, rate,
                                 channels, quality, event, file_seed, text))  # fmt: skip
    return plan


def _speak(item: DemoFile, rng: np.random.Generator) -> np.ndarray:
    spk = item.speaker
    form = TEXT_FORMS[rng.choice(len(TEXT_FORMS), p=TEXT_WEIGHTS)]
    rate = int(np.clip(spk.rate * rng.uniform(0.9, 1.1), 80, 450))
    pitch = int(np.clip(spk.pitch + rng.integers(-6, 7), 0, 100))
    pitch_range = int(np.clip(spk.pitch_range + rng.integers(-10, 11), 0, 100))
    settings = VoiceSettings(spk.voice, rate, pitch, pitch_range, int(rng.integers(80, 131)))
    text, ssml = form.format(item.text or item.label), form.startswith("<")
    audio, native = get_engine().synthesize(text, settings, ssml, seed=int(rng.integers(2**31)))
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    audio = audio[voiced[0] : voiced[-1] + 1] if voiced.size else audio
    in_rate = native * spk.vtlp * rng.uniform(0.98, 1.02)  # resampling moves formants and tempo
    return soxr.resample(audio.astype(np.float64), in_rate, item.sample_rate)


def _mic(x: np.ndarray, spk: Speaker, sr: int, rng: np.random.Generator) -> np.ndarray:
    y = signal.sosfilt(signal.butter(2, spk.highpass_hz, "highpass", fs=sr, output="sos"), x)
    if spk.lowpass_hz < 0.45 * sr:
        y = signal.sosfilt(signal.butter(4, spk.lowpass_hz, "lowpass", fs=sr, output="sos"), y)
    if spk.eq_hz * 1.4 < 0.45 * sr:  # a peak or dip around eq_hz
        band = signal.butter(1, [spk.eq_hz / 1.4, spk.eq_hz * 1.4], "bandpass", fs=sr, output="sos")
        y = y + (10 ** (spk.eq_db / 20) - 1) * signal.sosfilt(band, y)
    if spk.drive > 1:
        y = np.tanh(spk.drive * y / np.max(np.abs(y))) / np.tanh(spk.drive)
    if spk.reverb_rt60 > 0:
        t = np.arange(int(spk.reverb_rt60 * sr)) / sr
        ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / spk.reverb_rt60)
        wet = signal.fftconvolve(y, ir / np.linalg.norm(ir))
        y = np.concatenate([y, np.zeros(t.size - 1)]) + rng.uniform(0.15, 0.4) * wet
    return y / (np.max(np.abs(y)) + 1e-12)


def _noise(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS background noise of one kind."""
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    if kind == "hum":  # 50 or 60 Hz mains and harmonics over a faint hiss
        mains = rng.choice([50, 60])
        for k, phase in zip(range(1, 6), rng.uniform(0, 2 * np.pi, 5), strict=True):
            noise += 20 * rng.uniform(0.1, 1) / k * np.sin(2 * np.pi * k * mains * t + phase)
    elif kind in ("pink", "brown"):
        size = fft.next_fast_len(n, real=True)  # arbitrary lengths can be 10x slower
        freqs = np.maximum(np.fft.rfftfreq(size, 1 / sr), 20.0)
        spectrum = fft.rfft(rng.standard_normal(size)) / freqs ** (0.5 if kind == "pink" else 1)
        noise = fft.irfft(spectrum, size)[:n]
    elif kind == "babble":  # speech-band noise bands with syllable-rate envelopes
        for low in rng.uniform(150, min(2500, sr / 3), 4):
            band = [low, min(low * rng.uniform(1.5, 3), 0.45 * sr)]
            sos = signal.butter(2, band, "bandpass", fs=sr, output="sos")
            envelope = 1 + 0.9 * np.sin(2 * np.pi * rng.uniform(2, 7) * t + rng.uniform(0, 6))
            noise += 10 * signal.sosfilt(sos, rng.standard_normal(n)) * envelope
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def render_demo_file(item: DemoFile) -> bytes:
    """The encoded bytes of one demo recording (pure: same item, same bytes)."""
    rng, sr = np.random.default_rng([*item.seed, 1]), item.sample_rate
    speech = _mic(_speak(item, rng), item.speaker, sr, rng)  # peak 1
    room = max(0.1, MAX_SECONDS - speech.size / sr)
    lead, tail = rng.uniform(0.05, 0.7, 2) * min(1.0, room / 1.4)
    if item.event == "burst":  # room before the word for the knock
        lead, tail = max(lead, 0.35), max(0.05, min(tail, room - 0.35))
    elif item.event == "long":  # > 2.6 s, but trimmable: loud speech over very quiet noise
        lead = rng.uniform(1.3, 2.0)
    start, n = int(lead * sr), int(lead * sr) + speech.size + int(tail * sr)
    snr_db = rng.uniform(38, 45) if item.event == "long" else rng.uniform(10, 40)
    noise_kind, speech_rms = str(rng.choice(NOISES)), np.sqrt(np.mean(speech**2))
    audio = np.zeros((n, item.channels))
    for ch in range(item.channels):  # a second mic: quieter, a little later, its own noise
        gain, delay = (1.0, 0) if ch == 0 else (rng.uniform(0.6, 1.0), int(rng.integers(0, 24)))
        audio[:, ch] = _noise(noise_kind, n, sr, rng) * speech_rms * 10 ** (-snr_db / 20)
        audio[start + delay : start + delay + speech.size, ch] += gain * speech[: n - start - delay]
    if item.event == "burst":  # a knock before the word, inside the 2.6 s window
        length, at = int(rng.uniform(0.03, 0.15) * sr), int(rng.uniform(0.05, lead - 0.2) * sr)
        knock = rng.standard_normal(length) * np.exp(-np.arange(length) / (0.2 * length))
        audio[at : at + length] += (rng.uniform(0.1, 0.5) * knock / np.max(np.abs(knock)))[:, None]
    low_db = -12 if item.subtype == "PCM_U8" or item.event == "long" else -30
    audio *= 10 ** (rng.uniform(low_db, -1) / 20) / np.max(np.abs(audio))
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), sr, subtype=item.subtype, format=item.container,
             compression_level=item.quality)  # fmt: skip
    return _make_reproducible(buffer.getvalue(), int(rng.integers(1, 2**31)))


def _make_reproducible(data: bytes, serial: int) -> bytes:
    """Fix what libsndfile varies between runs: the Ogg stream serial (random) and the
    timestamp in a float WAV's PEAK chunk (the clock). Both files stay valid."""
    if data[:4] == b"RIFF":
        at = data.find(b"PEAK", 12, data.find(b"data", 12))
        return data if at < 0 else data[: at + 12] + bytes(4) + data[at + 16 :]
    out, pos = bytearray(data), 0
    while data[:4] == b"OggS" and pos < len(out):
        size = 27 + out[pos + 26] + sum(out[pos + 27 : pos + 27 + out[pos + 26]])
        out[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22 : pos + 26] = bytes(4)
        # Ogg's CRC-32 is unreflected with init 0: zlib's reflected CRC on bit-reversed bytes
        page = bytes(out[pos : pos + size])
        raw = zlib.crc32(page.translate(_BITREV)) ^ zlib.crc32(bytes(size))
        out[pos + 22 : pos + 26] = int(f"{raw:032b}"[::-1], 2).to_bytes(4, "little")
        pos += size
    return bytes(out)


def _write(item: DemoFile, input_dir: str) -> str:
    atomic_write_bytes(Path(input_dir) / item.relpath, render_demo_file(item))
    return item.relpath


def generate_demo_data(
    input_dir: Path,
    per_label: int = 144,
    speakers: int = 16,
    seed: int = 42,
    progress: ProgressFn = no_progress,
    workers: int = 2,
    unknown: int | None = None,
    near_misses: tuple[str, ...] = NEAR_MISSES,
) -> DemoSummary:
    """Write the demo recordings into ``input_dir``; existing files are kept untouched."""
    if per_label < 1 or speakers < 1 or (unknown is not None and unknown < 0):
        raise ValueError(
            f"per_label ({per_label}) and speakers ({speakers}) must be >= 1, "
            f"unknown ({unknown}) >= 0"
        )
    started, input_dir = time.perf_counter(), Path(input_dir)
    plan = plan_demo_files(per_label, speakers, seed, unknown, near_misses)
    # temp files a killed run left: only those named after our own files
    ours = {f"{Path(item.relpath).parent}/.{Path(item.relpath).name}" for item in plan}
    for entry in input_dir.rglob(f".*{TMP_MARK}*") if input_dir.is_dir() else ():
        if entry.relative_to(input_dir).as_posix().split(TMP_MARK)[0] in ours:
            entry.unlink(missing_ok=True)
    todo = [item for item in plan if not (input_dir / item.relpath).exists()]
    total, done = len(plan), len(plan) - len(todo)
    progress(done, total, "existing files kept" if done else "synthesising")
    with contextlib.ExitStack() as stack:
        results = map(_write, todo, repeat(str(input_dir)))
        if workers > 1 and len(todo) > 1:
            # spawn: a forked eSpeak or a forked threaded caller (the TUI) is not safe
            pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"))
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # stop on a failure
            results = pool.map(_write, todo, repeat(str(input_dir)))
        for relpath in results:
            done += 1
            progress(done, total, relpath)
    return DemoSummary(
        per_label=dict(Counter(item.label for item in plan)),
        per_format=dict(sorted(Counter(item.kind for item in plan).items())),
        per_speaker=dict(sorted(Counter(item.speaker.name for item in plan).items())),
        total_files=total,
        written=len(todo),
        skipped=total - len(todo),
        seconds=round(time.perf_counter() - started, 2),
    )
