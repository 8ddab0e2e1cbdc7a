"""`kwsops detect`: find the words in recordings of any length, or in live PCM, as they happen.

A window of the model's clip length slides over the audio with a hop of :data:`HOP_SECONDS`;
each window is scored by the revision's fold ensemble (the mean of the folds' softmaxes), with
onnxruntime (:class:`kwsops.compare.scorer.Scorer`: the front end once per chunk, the fold
classifier on batches of windows), so the process never imports torch.

Features: the log-mel is computed once per chunk of the stream and each window's frames are
sliced out of it; only the two or so frames at each edge of a window, whose FFT reaches past the
window, are computed again from the window's own audio (reflect-padded, as :func:`log_mel` pads
a clip). A window's features are therefore what ``log_mel`` of the window's audio gives, at a
tenth of the FFT work of computing each window apart (windows overlap by 92 %).

Events: the scores of :data:`SMOOTH_WINDOWS` consecutive windows are averaged; a detection fires
on the first window where a word wins the average with at least the threshold (the revision's
operating point unless told) and also wins :data:`VOTES` of those windows alone at the
threshold, which is within a hop or two of the word's end, and is printed
one window later with the higher probability of the two, so live input is answered within
about 0.4 s of the word. Its span is the last burst of energy in that window, the word just said.
One run of windows over the threshold for one word is one detection, and a refractory gap holds
every label off until the windows start after that word: a word heard in eight overlapping
windows is one detection, also when the first of them caught only its beginning.

Why a hop of 0.2 s: a word of 0.4 to 1 s lies whole in 8 or more windows of 2.6 s, the first
ending under 0.2 s after the word, which with the smoothing and the one-window confirmation keeps
the live answer within 0.5 s of it. Scoring is the cost (benchmarks/streams.py): a 5-fold
ensemble scores about 1090 windows per CPU-second on this machine with onnxruntime, 200x real
time at 5 windows a second before the features; a hop of 0.1 s would halve that.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from kwsops.config import AudioSettings, FeatureSettings

HOP_SECONDS = 0.2
SMOOTH_WINDOWS = 2  # scores averaged over this many consecutive windows
# of those windows, how many the word must win alone at the threshold: 2 of 2 cut false alarms
# at equal misses by 6 to 20 % on an hour of held-out speech (benchmarks/decisions.py)
VOTES = 2
REFRACTORY_SECONDS = 0.0  # windows starting within this long after a word's end stay quiet
# a detection is printed one window after it fires, with the higher of the two probabilities:
# the first firing window often holds only part of the word (measured: 0.38 there, 0.8 next)
CONFIRM_WINDOWS = 1
BATCH_WINDOWS = 64  # windows per forward pass (measured fastest per window of 64 and 256)
MIN_WORD_SECONDS = 0.2  # a detection's span is at least this long...
MAX_WORD_SECONDS = 1.5  # ...and at most this (the onset of continuous speech is not a word's)
GAP_FRAMES = 12  # quieter frames inside a word (stops, 120 ms) do not split it
_LN_DB = math.log(10.0) / 10.0  # dB to natural-log power (the log-mel's unit)
ENERGY_DROP_DB = 30.0  # a frame is part of the word within this of the loudest frame...
NOISE_MARGIN_DB = 6.0  # ...and this far above the window's quiet frames (a 10th percentile)
PAD_NOISE_DBFS = AudioSettings().pad_noise_dbfs  # a short stream's end is padded as clips are


@dataclass(frozen=True)
class Detection:
    start: float  # seconds from the start of the stream
    end: float
    label: str
    probability: float  # smoothed ensemble probability: the firing window or the next, higher


def window_samples(meta: dict) -> int:
    """The model's clip length in samples: its metadata's ``audio.clip_seconds`` (or a top-level
    ``clip_seconds``) when recorded, else the default clip length every model so far used."""
    settings = FeatureSettings(**meta["features"])
    audio = meta.get("audio") if isinstance(meta.get("audio"), dict) else {}
    seconds = audio.get("clip_seconds", meta.get("clip_seconds", AudioSettings().clip_seconds))
    return round(float(seconds) * settings.sample_rate)


class WindowScorer(Protocol):
    """What the detector scores with (:class:`kwsops.compare.scorer.Scorer`)."""

    labels: list[str]
    settings: FeatureSettings
    window: int  # samples

    def log_mel(self, audio: np.ndarray) -> np.ndarray: ...  # [B, samples] -> [B, mels, frames]

    def score(self, features: np.ndarray) -> np.ndarray: ...  # [N, mels, frames] -> [N, classes]


def window_features(
    chunk: np.ndarray,
    count: int,
    window: int,
    hop: int,
    settings: FeatureSettings,
    log_mel: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``[count, n_mels, frames]`` log-mel of the windows starting at ``0, hop, 2*hop ...`` of
    ``chunk`` (1-D, at least ``(count - 1) * hop + window`` samples; ``hop`` a multiple of the
    feature hop), each equal to ``log_mel`` (``[B, samples] -> [B, n_mels, frames]``, reflect
    padding as :func:`kwsops.ml.features.log_mel`) of that window's audio."""
    step = settings.hop_length
    frames = window // step + 1
    half = settings.n_fft // 2
    full = log_mel(chunk[None, : (count - 1) * hop + window])[0]  # [n_mels, all frames]
    index = (np.arange(count) * (hop // step))[:, None] + np.arange(frames)[None, :]
    out = np.ascontiguousarray(full[:, index].transpose(1, 0, 2))  # [count, n_mels, frames]
    starts = np.arange(count) * hop
    # frames whose FFT reaches before the window's start: recomputed from the window's first
    # samples, reflect-padded at the start as log_mel pads
    left = min(frames, -(-half // step))
    if left:
        span = min(window, (left - 1) * step + half + step)
        segments = np.stack([chunk[s : s + span] for s in starts.tolist()])
        out[:, :, :left] = log_mel(segments)[:, :, :left]
    # frames whose FFT reaches past the window's end: from its last samples, padded at the end
    first_right = max(left, (window - half) // step + 1)
    if first_right < frames:
        origin = max(0, (first_right * step - half - step) // step * step)
        segments = np.stack([chunk[s + origin : s + window] for s in starts.tolist()])
        tail = log_mel(segments)
        offset = origin // step
        out[:, :, first_right:] = tail[:, :, first_right - offset : frames - offset]
    return out


def log_energy(features: np.ndarray) -> np.ndarray:
    """``[N, frames]`` log of each frame's total mel power, from log-mel ``[N, n_mels, frames]``."""
    peak = features.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(features - peak).sum(axis=1, keepdims=True)))[:, 0]


def _word_span(energy: np.ndarray, frame_seconds: float) -> tuple[float, float]:
    """(start, end) in seconds from the window's start of the last burst of energy in it: the
    word a window that just started to score it ends with."""
    peak = float(energy.max())
    quiet = float(np.percentile(energy, 10))
    line = max(peak - ENERGY_DROP_DB * _LN_DB, min(quiet + NOISE_MARGIN_DB * _LN_DB, peak))
    active = np.flatnonzero(energy >= line)
    if not len(active):
        end = len(energy) * frame_seconds
        return end - MIN_WORD_SECONDS, end
    last = first = int(active[-1])
    for index in active[::-1][1:]:
        if first - int(index) > GAP_FRAMES:
            break
        first = int(index)
    start, end = first * frame_seconds, (last + 1) * frame_seconds
    if end - start > MAX_WORD_SECONDS:
        start = end - MAX_WORD_SECONDS
    if end - start < MIN_WORD_SECONDS:
        start = max(0.0, end - MIN_WORD_SECONDS)
    return start, end


class Events:
    """Window scores in, one detection per spoken word out (smoothing, a refractory gap)."""

    def __init__(
        self,
        labels: list[str],
        threshold: float,
        hop_seconds: float,
        window_seconds: float,
        smooth: int = SMOOTH_WINDOWS,
        votes: int = VOTES,
        refractory: float = REFRACTORY_SECONDS,
    ):
        from kwsops.keywords import is_word

        self.labels = labels
        self.words = np.array([is_word(label) for label in labels])
        self.threshold = threshold
        self.hop = hop_seconds
        self.window = window_seconds
        self.recent: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=max(1, smooth))
        self.votes = min(max(1, votes), max(1, smooth))
        self.refractory = refractory
        self.hold_until = -math.inf  # windows starting before this cannot fire
        self.firing: str | None = None  # the word of the run of windows now over threshold
        self.pending: tuple[Detection, int, int] | None = None  # (detection, column, waited)

    def push(self, index: int, probs: np.ndarray, energy: np.ndarray) -> list[Detection]:
        """The scores of window ``index`` (it starts at ``index * hop``) and its frames' log
        energy; the detections this window completes."""
        if self.recent and self.recent[-1][0] != index - 1:
            self.recent.clear()
        self.recent.append((index, probs, energy))
        smoothed = np.mean([p for _, p, _ in self.recent], axis=0)
        best = int(smoothed.argmax())
        done = self._confirm(best, smoothed)
        if not self.words[best] or smoothed[best] < self.threshold or not self._voted(best):
            self.firing = None
            return done
        if self.labels[best] == self.firing or index * self.hop < self.hold_until:
            return done  # the same run of windows, or a window that still holds the last word
        self.firing = self.labels[best]
        # the earliest window of the smoothing that scores the word itself ends nearest to it
        first, _, first_energy = next(
            ((i, p, e) for i, p, e in self.recent if p[best] >= self.threshold), self.recent[-1]
        )
        offset = first * self.hop
        frame = self.window / max(1, len(first_energy) - 1)
        word_start, word_end = _word_span(first_energy, frame)
        word_start, word_end = offset + word_start, min(offset + word_end, offset + self.window)
        # a window that still holds the word's last sounds may score it again: none fires
        # before the word is over (measured: a third of a word's tail can still win)
        self.hold_until = word_end + self.refractory
        self.pending = (
            Detection(word_start, word_end, self.firing, float(smoothed[best])),
            best,
            0,
        )
        return done + self._confirm(best, smoothed, fresh=True)

    def _voted(self, best: int) -> bool:
        """Whether ``best`` wins at least ``votes`` of the smoothed windows on its own."""
        if self.votes <= 1:
            return True
        won = sum(
            1 for _, p, _ in self.recent if p[best] >= self.threshold and int(p.argmax()) == best
        )
        return won >= self.votes

    def _confirm(self, best: int, smoothed: np.ndarray, fresh: bool = False) -> list[Detection]:
        """The pending detection once CONFIRM_WINDOWS more windows have scored it (its
        probability the highest of them) or its run has ended."""
        if self.pending is None:
            return []
        detection, column, waited = self.pending
        if not fresh:
            top = max(detection.probability, float(smoothed[column]))
            detection, waited = replace(detection, probability=top), waited + 1
        ended = best != column or smoothed[column] < self.threshold
        if waited >= CONFIRM_WINDOWS or (ended and not fresh):
            self.pending = None
            return [detection]
        self.pending = (detection, column, waited)
        return []

    def flush(self) -> list[Detection]:
        """The detection still waiting for confirmation at the end of the stream."""
        pending, self.pending = self.pending, None
        return [] if pending is None else [pending[0]]


class Detector:
    """Feed audio blocks of any size at the model's rate; get detections as soon as the
    windows that show them are complete. Holds at most a window plus one block of audio."""

    def __init__(
        self,
        ensemble: WindowScorer,
        threshold: float,
        hop_seconds: float = HOP_SECONDS,
        batch_windows: int = BATCH_WINDOWS,
        **decisions,
    ):
        settings = ensemble.settings
        self.ensemble = ensemble
        self.rate = settings.sample_rate
        self.window = ensemble.window
        step = settings.hop_length
        self.hop = max(step, round(hop_seconds * self.rate / step) * step)
        self.batch = max(1, batch_windows)
        self.events = Events(  # decisions: Events' smooth, votes, refractory
            ensemble.labels, threshold, self.hop / self.rate, self.window / self.rate, **decisions
        )
        self.buffer = np.zeros(0, np.float32)
        self.base = 0  # stream sample of buffer[0]
        self.next_window = 0
        self.samples = 0
        self.windows_scored = 0

    def feed(self, block: np.ndarray) -> list[Detection]:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self.buffer = np.concatenate([self.buffer, block]) if len(self.buffer) else block
        self.samples += len(block)
        return self._score_ready()

    def finish(self) -> list[Detection]:
        """Score the end: the last window is padded with low noise (as clips are padded) so
        that every sample of the stream has been in a window."""
        if self.samples == 0:
            return []
        covered = (self.next_window - 1) * self.hop + self.window if self.next_window else 0
        found: list[Detection] = []
        if covered < self.samples:
            last = max(0, -(-(self.samples - self.window) // self.hop))
            pad = last * self.hop + self.window - (self.base + len(self.buffer))
            if pad > 0:
                rng = np.random.default_rng(0)
                noise = rng.standard_normal(pad).astype(np.float32) * 10 ** (PAD_NOISE_DBFS / 20)
                self.buffer = np.concatenate([self.buffer, noise])
            found = self._score_ready()
        return found + self.events.flush()

    def _score_ready(self) -> list[Detection]:
        found: list[Detection] = []
        end = self.base + len(self.buffer)
        while (ready := (end - self.window) // self.hop + 1 - self.next_window) > 0:
            count = min(ready, self.batch)
            first = self.next_window * self.hop - self.base
            chunk = self.buffer[first : first + (count - 1) * self.hop + self.window]
            features = window_features(chunk, count, self.window, self.hop,
                                       self.ensemble.settings, self.ensemble.log_mel)  # fmt: skip
            probs = self.ensemble.score(features)
            energy = log_energy(features)  # [count, frames] log power
            for offset in range(count):
                found += self.events.push(self.next_window + offset, probs[offset], energy[offset])
            self.next_window += count
            self.windows_scored += count
            drop = self.next_window * self.hop - self.base
            if drop > 0:
                self.buffer = self.buffer[drop:]
                self.base += drop
        return found


def detect_blocks(
    ensemble: WindowScorer, blocks: Iterable[np.ndarray], threshold: float, **options
) -> Iterator[Detection]:
    """Detections in a stream of audio blocks at the model's rate, each as soon as it is seen."""
    detector = Detector(ensemble, threshold, **options)
    for block in blocks:
        yield from detector.feed(block)
    yield from detector.finish()
