"""kwsops.ml.windows: words cut by the window's edge become _unknown_, words amid speech stay."""

from __future__ import annotations

import torch

from kwsops.config import FeatureSettings
from kwsops.ml.augment import Augmenter, AugmentSettings
from kwsops.ml.windows import edge_cuts, in_context, word_spans

FRAMES, MELS = 200, 40


def word_clip(start: int, length: int, floor: float = -9.0, loud: float = 2.0) -> torch.Tensor:
    """A log-mel clip of a quiet floor with a loud 'word' in frames [start, start + length)."""
    x = torch.full((MELS, FRAMES), floor) + 0.1 * torch.randn(MELS, FRAMES, generator=GEN)
    x[:, start : start + length] = loud
    return x


GEN = torch.Generator().manual_seed(0)


def test_word_spans_find_the_loud_part() -> None:
    x = torch.stack([word_clip(50, 40), word_clip(120, 60)])
    first, last = word_spans(x)
    assert (first - torch.tensor([50, 120])).abs().max() <= 2
    assert (last - torch.tensor([89, 179])).abs().max() <= 2


def test_an_edge_cut_leaves_the_fraction_asked_and_relabels_unknown() -> None:
    x = torch.stack([word_clip(80, 40), word_clip(80, 40), word_clip(80, 40)])
    y = torch.tensor([2, 2, 2])
    chosen = torch.tensor([True, True, False])
    out, target = edge_cuts(x, y, chosen, torch.tensor([0.75, 0.6, 0.75]),
                            torch.tensor([True, False, True]), unknown=0)  # fmt: skip
    assert target.tolist() == [0, 0, 2]
    loud = (out.mean(1) > -3).sum(1)
    assert abs(int(loud[0]) - 10) <= 2 and loud[0] < 40  # 25 % of 40 frames left, at the start
    assert bool(out[0, :, :5].mean() > -3) and bool(out[0, :, 20:].mean() < -8)
    assert abs(int(loud[1]) - 16) <= 2 and bool(out[1, :, -5:].mean() > -3)  # at the end
    assert torch.equal(out[2], x[2])


def test_context_adds_speech_outside_the_word_only() -> None:
    x = torch.stack([word_clip(80, 40), word_clip(80, 40)])
    other = torch.full((2, MELS, FRAMES), 1.0)  # speech all through the window
    out = in_context(x, torch.tensor([True, False]), other, torch.tensor([0.0, 0.0]))
    assert torch.equal(out[1], x[1])
    assert torch.allclose(out[0, :, 85:115], x[0, :, 85:115])  # the word untouched
    assert (out[0, :, :70] > -1).all() and (out[0, :, 130:] > -1).all()  # speech around it


def test_the_augmenter_cuts_and_mixes_only_with_unknown_speech() -> None:
    x = torch.stack([word_clip(80, 40), word_clip(60, 30), word_clip(0, 200, loud=0.0)])
    y = torch.tensor([1, 2, 0])  # two words and unknown speech
    settings = AugmentSettings.none()
    features = FeatureSettings()
    always = AugmentSettings(**{**settings.as_dict(), "edge_cut": True, "edge_cut_prob": 1.0})
    _, target = Augmenter(always, 3, features, label_names=["_unknown_", "a", "b"])(x, y)
    assert target.tolist() == [0, 0, 0]
    # no _unknown_ class: nothing to cut words into, nothing to mix in
    out, target = Augmenter(always, 3, features, label_names=["_silence_", "a", "b"])(x, y)
    assert torch.equal(out, x) and torch.equal(target, y)
