"""Training windows like the detector's: words cut by the window's edge, words amid speech.

A detector slides a window over a stream: most windows hold other speech, a word's windows hold
it anywhere inside, often with speech before or after it, and the windows at its edges hold a
fragment. Preprocess gives aligned clips of one word over quiet padding. Here, per batch, on
natural-log mel power ``[B, n_mels, frames]`` (cheap: no audio, no FFT):

- an edge cut slides a word clip so that most of the word (``cut_fraction``) falls outside the
  window; what slides in is each band's background level. The clip is relabelled
  ``_unknown_``: a fragment is not the word.
- context mixes an unknown-speech clip of the same batch into a word clip's frames outside the
  word (linear power, at ``context_db`` to the word's level): the word amid other speech keeps
  its label.

Where the word is: frames whose total power stands ``ACTIVE_DB`` above the clip's floor.
Needs the ``_unknown_`` class among the labels; without it both are skipped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ACTIVE_DB = 10.0  # a frame is the word when its power is this far over the clip's floor
_DB = math.log(10) / 10  # power dB -> natural log
CONTEXT_MARGIN = 2  # frames kept clear on each side of the word


def word_spans(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last frame of the loud part of each clip (last < first when none)."""
    frames = x.shape[2]
    energy = torch.logsumexp(x, dim=1)  # [B, T] log of the total mel power
    smooth = F.avg_pool1d(energy[:, None], 5, 1, 2, count_include_pad=False)[:, 0]
    floor = smooth.quantile(0.1, dim=1, keepdim=True)
    peak = smooth.amax(dim=1, keepdim=True)
    active = smooth > torch.maximum(floor + ACTIVE_DB * _DB, peak - 40 * _DB)
    index = torch.arange(frames, device=x.device)
    first = torch.where(active, index, frames).amin(dim=1)
    last = torch.where(active, index, -1).amax(dim=1)
    return first, last


def band_background(x: torch.Tensor) -> torch.Tensor:
    """Each band's quietest ~80 ms level ``[B, n_mels, 1]`` (what slides in from outside)."""
    window = min(8, x.shape[2])
    return x.unfold(2, window, max(1, window // 2)).mean(-1).amin(dim=2, keepdim=True)


def shift_frames(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each clip moved by ``shift[b]`` whole frames (positive: later), background slid in."""
    frames = x.shape[2]
    source = torch.arange(frames, device=x.device)[None, :] - shift[:, None]  # [B, T]
    inside = (source >= 0) & (source < frames)
    moved = x.gather(2, source.clamp(0, frames - 1)[:, None, :].expand_as(x))
    return torch.where(inside[:, None, :], moved, band_background(x))


def edge_cuts(
    x: torch.Tensor,
    y: torch.Tensor,
    chosen: torch.Tensor,
    fraction: torch.Tensor,
    to_left: torch.Tensor,
    unknown: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``chosen`` clips (bool [B]) slid so that ``fraction`` of their word lies beyond the
    left (``to_left``) or right edge, relabelled ``unknown``."""
    first, last = word_spans(x)
    chosen = chosen & (last >= first)
    if not bool(chosen.any()):
        return x, y
    length = (last - first + 1).float()
    frames = x.shape[2]
    left = -fraction * length - first.float()  # the word's first frame goes to -fraction*length
    right = (frames - 1) + fraction * length - last.float()
    shift = torch.where(to_left, left, right).round().long()
    shift = torch.where(chosen, shift, torch.zeros_like(shift))
    x = torch.where(chosen[:, None, None], shift_frames(x, shift), x)
    return x, torch.where(chosen, torch.full_like(y, unknown), y)


def in_context(
    x: torch.Tensor,
    chosen: torch.Tensor,
    others: torch.Tensor,
    level_db: torch.Tensor,
) -> torch.Tensor:
    """The ``chosen`` clips with ``others`` (log-mels of other speech, one per clip) mixed in
    outside their word, at ``level_db`` to the word's mean power."""
    first, last = word_spans(x)
    chosen = chosen & (last >= first)
    if not bool(chosen.any()):
        return x
    frames = x.shape[2]
    index = torch.arange(frames, device=x.device)[None, :]
    word = (index >= (first - CONTEXT_MARGIN)[:, None]) & (
        index <= (last + CONTEXT_MARGIN)[:, None]
    )
    power, other = x.exp(), others.exp()
    span = (index >= first[:, None]) & (index <= last[:, None])
    word_level = (power.sum(1) * span).sum(1) / span.sum(1).clamp_min(1)
    other_level = other.sum(1).mean(1).clamp_min(1e-12)
    # the level difference rounded to 0.001 dB: sums split over threads differ in their last
    # bits, and both training modes must mix the same bits whatever their thread counts
    ratio_db = torch.round(10 * torch.log10(word_level / other_level) * 1000) / 1000
    scale = torch.pow(10.0, (ratio_db + level_db) / 10)
    scale = torch.where(chosen, scale, torch.zeros_like(scale))
    mixed = power + (scale[:, None, None] * other) * (~word)[:, None, :]
    return torch.where(chosen[:, None, None], torch.log(mixed.clamp_min(1e-30)), x)
