"""K-fold training on tiny synthetic data: learns, repeats exactly, writes its outputs."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kwsops.config import TrainSettings
from kwsops.ml.augment import AUGMENTATIONS, Augmenter, AugmentSettings, noise_bank
from kwsops.ml.features import load_split
from kwsops.ml.fold.book import HISTORY_FIELDS
from kwsops.ml.fold.setup import fold_pairs
from kwsops.ml.model import load_model
from kwsops.ml.training import summarize_folds, train_fold
from tests.helpers.clips import tiny_spec_dir

SETTINGS = TrainSettings(batch_size=16, epochs=2, learning_rate=0.01, folds=3, patience=5)


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory) -> Path:
    return tiny_spec_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def first_run(spec_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fold_1")
    epochs: list[tuple[int, dict]] = []
    ticks: list[tuple[int, int, str]] = []
    result = train_fold(
        spec_dir,
        out,
        SETTINGS,
        1,
        threads=1,
        on_epoch=lambda epoch, metrics: epochs.append((epoch, metrics)),
        progress=lambda done, total, detail="": ticks.append((done, total, detail)),
    )
    return result, out, epochs, ticks


def test_fold_indices_are_grouped_stratified_and_seeded(spec_dir):
    split = load_split(spec_dir, "train")
    folds, note = fold_pairs(split, 3, seed=42)
    assert note == ""  # enough speakers: grouped by speaker
    assert all(
        np.array_equal(a, c) and np.array_equal(b, d)
        for (a, b), (c, d) in zip(folds, fold_pairs(split, 3, seed=42)[0], strict=True)
    )
    speakers = np.array(split.speakers)
    all_val = np.concatenate([val for _, val in folds])
    assert sorted(all_val.tolist()) == list(range(len(split)))  # every clip validated once
    for train, val in folds:
        assert set(speakers[train]).isdisjoint(speakers[val])
        assert len(set(split.labels[val].tolist())) == 3
    with pytest.raises(ValueError, match="50 folds need at least 50"):
        fold_pairs(split, 50, seed=42)


def test_train_fold_learns_and_reports_each_epoch(first_run):
    result, out, epochs, ticks = first_run
    assert [e for e, _ in epochs] == [1, 2]
    assert set(epochs[0][1]) == set(HISTORY_FIELDS)
    assert [t[:2] for t in ticks] == [(1, 2), (2, 2)] and ticks[1][2].startswith("fold 1 epoch 2")
    assert result.fold == 1 and result.epochs_run == 2
    assert result.val_acc >= 0.6  # chance is 1/3
    assert result.params > 0 and result.seconds > 0


def test_train_fold_writes_model_history_metrics(first_run):
    result, out, _, _ = first_run
    assert sorted(p.name for p in out.iterdir()) == [
        "history.csv",
        "metrics.json",
        "model.safetensors",
    ]
    with (out / "history.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and tuple(rows[0]) == HISTORY_FIELDS
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_acc"] == result.val_acc and metrics["best_epoch"] in (1, 2)
    model, meta = load_model(out / "model.safetensors")
    assert meta["labels"] == ["catch", "gun", "rock"] and meta["fold"] == 1
    assert meta["metrics"]["val_acc"] == result.val_acc
    assert meta["params"]["batch_size"] == 16 and "augment" in meta["params"]


def test_same_seed_same_metrics_and_weights(first_run, spec_dir, tmp_path):
    result, out, _, _ = first_run
    again = train_fold(spec_dir, tmp_path, SETTINGS, 1, threads=1)
    assert (again.val_acc, again.val_loss, again.train_loss, again.best_epoch) == (
        result.val_acc,
        result.val_loss,
        result.train_loss,
        result.best_epoch,
    )
    first, _ = load_model(out / "model.safetensors")
    second, _ = load_model(tmp_path / "model.safetensors")
    for (name, a), (_, b) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_summarize_folds_accepts_results_and_metrics_files(first_run):
    result, out, _, _ = first_run
    from_metrics = json.loads((out / "metrics.json").read_text())
    summary = summarize_folds([result, from_metrics])
    assert summary["folds"] == 2 and summary["val_accuracy_mean"] == result.val_acc
    assert summary["val_accuracy_std"] == 0.0 and summary["seconds_total"] > 0


def test_augmentations_switch_off_by_name_and_keep_shapes(spec_dir):
    split = load_split(spec_dir, "train")
    mixed = torch.cat([torch.nonzero(split.labels == k).flatten()[:3] for k in range(3)])[:8]
    x, y = split.features[mixed], split.labels[mixed]
    bank = noise_bank(split.feature_settings, x.shape[2], x, count=6, seed=1)
    assert bank.shape == (6, 40, x.shape[2]) and (bank > 0).all()
    # the windows like the detector's need an _unknown_ class: the first label plays it
    names = ["_unknown_", *split.label_names[1:]]
    for name in AUGMENTATIONS:
        settings = AugmentSettings.none().with_(name)
        settings = dataclasses.replace(settings, edge_cut_prob=1.0, context_prob=1.0)
        augmenter = Augmenter(settings, 3, split.feature_settings, bank, seed=0, label_names=names)
        out, target = augmenter(x, y)
        assert out.shape == x.shape and torch.isfinite(out).all(), name
        assert not torch.equal(out, x), f"{name} changed nothing"
        assert target.shape == ((8, 3) if name == "mixup" else (8,))
        assert AugmentSettings().without(name).enabled == [
            n for n in AugmentSettings().enabled if n != name
        ]
    same, _ = Augmenter(AugmentSettings.none(), 3, split.feature_settings, bank)(x, y)
    assert torch.equal(same, x)
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentSettings().without("chorus")


def test_fold_out_of_range_is_refused(spec_dir, tmp_path):
    with pytest.raises(ValueError, match="fold 3 out of range"):
        train_fold(spec_dir, tmp_path, SETTINGS, 3)


def test_reverb_is_the_causal_exponential_tail_of_every_band(spec_dir):
    """Reverb alone, on every clip: each band's power is the direct sound plus ``wet`` times
    the earlier frames weighted by the room's whole normalised exponential decay (computed
    here by direct convolution in float64; the augmenter's float32 FFT cuts the tail at
    -90 dB)."""
    split = load_split(spec_dir, "train")
    x, y = split.features[:4], split.labels[:4]
    settings = dataclasses.replace(AugmentSettings.none().with_("reverb"), prob=1.0)
    out, _ = Augmenter(settings, 3, split.feature_settings, None, seed=5)(x, y)
    gen = torch.Generator().manual_seed(5)  # the augmenter's draws, in its order
    low, high = settings.reverb_rt60
    rt60 = low + (high - low) * torch.rand(4, generator=gen)
    low, high = settings.reverb_wet
    wet = low + (high - low) * torch.rand(4, generator=gen)
    hop_s = split.feature_settings.hop_length / split.feature_settings.sample_rate
    linear = x.double().exp().numpy()
    frames = x.shape[2]
    for b in range(4):
        decay = 10.0 ** (-6.0 * hop_s / float(rt60[b]))
        tail = decay ** np.arange(frames)
        tail[0] = 0.0
        tail /= tail.sum()
        room = np.stack([np.convolve(band, tail)[:frames] for band in linear[b]])
        expected = linear[b] + float(wet[b]) * room
        # to float32 FFT precision: relative to each clip's loudest bin (quiet bins 1e-7 of it)
        got = out[b].double().exp().numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * expected.max())
    assert not torch.allclose(out, x)
