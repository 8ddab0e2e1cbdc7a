"""Stacked training against ``train_fold`` on tiny synthetic data.

In float64, rounding no longer hides mistakes: every fold must come out of ``train_folds`` as it
comes out of ``train_fold`` (same history, early stop, best weights, model file metadata).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from kwsops.config import TrainSettings
from kwsops.ml import stacked
from kwsops.ml.compute import step_dtype
from kwsops.ml.features import load_split
from kwsops.ml.fold.book import HISTORY_FIELDS
from kwsops.ml.fold.setup import FoldOptions
from kwsops.ml.model import TCResNet, load_model, read_model_meta
from kwsops.ml.training import train_fold
from tests.helpers.clips import tiny_spec_dir

# batch 16 on ~50 clips per fold: four steps, the last one short and of another length per
# fold; patience 1 stops some folds early and not others
SETTINGS = TrainSettings(batch_size=16, epochs=4, learning_rate=0.01, folds=3, patience=1)


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory) -> Path:
    # with _unknown_: the edge cuts and context (kwsops.ml.windows) run in both modes
    return tiny_spec_dir(tmp_path_factory, labels=("_unknown_", "catch", "gun", "rock"))


@pytest.fixture(scope="module")
def data64(spec_dir):
    split = load_split(spec_dir, "train")
    return dataclasses.replace(split, features=split.features[:].double())  # tiny: in memory


@pytest.fixture
def float64():
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old_dtype)


@pytest.fixture(scope="module")
def float64_runs(spec_dir, data64, tmp_path_factory):
    """Every fold by ``train_fold`` and by ``train_folds`` (two lanes), all in float64."""
    data = data64
    in_memory = FoldOptions(data=data)
    root = tmp_path_factory.mktemp("float64")
    folds = list(range(SETTINGS.folds))
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        old = [
            train_fold(spec_dir, root / f"old_{k}", SETTINGS, k, threads=1, options=in_memory)
            for k in folds
        ]
        dirs = {k: root / f"new_{k}" for k in folds}
        on_cpu = FoldOptions(data=data, device="cpu")
        new = stacked.train_folds(spec_dir, dirs, SETTINGS, lanes=2, options=on_cpu)
    finally:
        torch.set_default_dtype(old_dtype)
    return old, new


def history(folder: Path) -> list[dict]:
    with (folder / "history.csv").open(newline="") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def test_float64_stacked_folds_are_train_fold_folds(float64_runs):
    old, new = float64_runs
    assert any(r.stopped_early for r in old) and not all(r.stopped_early for r in old)
    skip = {"seconds", "threads", "model_path", "stacked_folds"}
    for a, b in zip(old, new, strict=True):
        assert history(a.model_path.parent) == history(b.model_path.parent)
        assert {k: v for k, v in a.as_dict().items() if k not in skip} == {
            k: v for k, v in b.as_dict().items() if k not in skip
        }
        wa, wb = load_file(str(a.model_path)), load_file(str(b.model_path))
        assert wa.keys() == wb.keys()
        for name in wa:
            torch.testing.assert_close(wa[name], wb[name], rtol=1e-9, atol=1e-11)
        ma, mb = read_model_meta(a.model_path), read_model_meta(b.model_path)
        for meta in (ma, mb):
            for key in ("seconds", "threads", "stacked_folds"):
                meta["metrics"].pop(key)
        assert ma == mb
        metrics = [json.loads((r.model_path.parent / "metrics.json").read_text()) for r in (a, b)]
        assert metrics[0].keys() == metrics[1].keys()
        assert (metrics[0]["stacked_folds"], metrics[1]["stacked_folds"]) == (1, SETTINGS.folds)


def test_stacked_outputs_load_as_plain_models(float64_runs):
    _, new = float64_runs
    for result in new:
        model, meta = load_model(result.model_path)
        assert type(model) is TCResNet and meta["fold"] == result.fold
        with (result.model_path.parent / "history.csv").open() as handle:
            assert tuple(next(csv.reader(handle))) == HISTORY_FIELDS


def test_a_stopped_fold_gets_no_more_steps(spec_dir, data64, float64, tmp_path, monkeypatch):
    """Early stopping is per fold: a stopped fold takes no step and its AdamW state freezes,
    while the others train on."""
    steps: dict[int, list[int]] = {}  # fold -> epoch of each optimizer step it took
    frozen: dict[int, int] = {}  # fold -> AdamW step count when it was written out
    train_step, write = stacked._train_step, stacked.write_fold
    epoch = {"now": 1}

    def counting_step(net, members, folds, *args):
        for f in folds:
            steps.setdefault(f.fold, []).append(epoch["now"])
        return train_step(net, members, folds, *args)

    def on_epoch(fold, number, row):
        epoch["now"] = number + 1

    monkeypatch.setattr(stacked, "_train_step", counting_step)
    dirs = {k: tmp_path / f"fold_{k}" for k in range(SETTINGS.folds)}

    def writing(out, fold, *args):
        adam = fold.optimizer.state_dict()["state"].values()
        frozen[fold.fold] = min(int(v["step"]) for v in adam)
        return write(out, fold, *args)

    monkeypatch.setattr(stacked, "write_fold", writing)
    on_cpu = FoldOptions(data=data64, device="cpu")
    results = stacked.train_folds(
        spec_dir, dirs, SETTINGS, lanes=1, on_epoch=on_epoch, options=on_cpu
    )
    assert any(r.stopped_early for r in results) and not all(r.stopped_early for r in results)
    for r in results:
        assert max(steps[r.fold]) == r.epochs_run  # nothing after the epoch it stopped
        assert frozen[r.fold] == len(steps[r.fold])  # AdamW state frozen with it


def test_callbacks_and_bad_arguments(spec_dir, tmp_path):
    rows, ticks = [], []
    settings = dataclasses.replace(SETTINGS, epochs=1)
    stacked.train_folds(
        spec_dir,
        {2: tmp_path / "f2", 0: tmp_path / "f0"},
        settings,
        on_epoch=lambda fold, epoch, row: rows.append((fold, epoch, row)),
        progress=lambda done, total, detail="": ticks.append((done, total)),
        lanes=1,
    )
    assert [(f, e) for f, e, _ in rows] == [(2, 1), (0, 1)]
    assert set(rows[0][2]) == set(HISTORY_FIELDS)
    assert ticks[-1] == (2, 2)
    with pytest.raises(ValueError, match="out of range"):
        stacked.train_folds(spec_dir, {3: tmp_path / "x"}, settings)
    with pytest.raises(ValueError, match="no folds to train"):
        stacked.train_folds(spec_dir, {}, settings)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_training_steps_run_in_the_precision_asked(spec_dir, tmp_path, monkeypatch, precision):
    """Both ways of training: the training steps' convolutions run in the precision asked, the
    weights, the validation scores and the model file stay float32, and metrics.json says it."""
    seen: set[torch.dtype] = set()
    real_conv2d, real_conv1d = F.conv2d, F.conv1d

    def conv2d(*args, **kwargs):
        out = real_conv2d(*args, **kwargs)
        seen.add(out.dtype)
        return out

    def conv1d(*args, **kwargs):
        out = real_conv1d(*args, **kwargs)
        seen.add(out.dtype)
        return out

    monkeypatch.setattr(F, "conv2d", conv2d)
    monkeypatch.setattr(F, "conv1d", conv1d)
    settings = dataclasses.replace(SETTINGS, epochs=2, precision=precision)
    on_cpu = FoldOptions(device="cpu")
    one = train_fold(spec_dir, tmp_path / "one", settings, 0, threads=1, options=on_cpu)
    together = stacked.train_folds(spec_dir, {0: tmp_path / "a", 1: tmp_path / "b"}, settings,
                                   lanes=1, options=on_cpu)  # fmt: skip
    expected = {torch.float32} | ({torch.bfloat16} if precision == "bfloat16" else set())
    assert seen == expected  # validation passes are float32 either way
    for result in [one, *together]:
        metrics = json.loads((result.model_path.parent / "metrics.json").read_text())
        assert metrics["precision"] == precision
        assert 0 < result.val_loss < 10 and 0 <= result.val_acc <= 1
        weights = load_file(str(result.model_path))
        assert {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}
        assert read_model_meta(result.model_path)["params"]["precision"] == precision


def test_auto_precision_is_bfloat16_only_on_a_cpu_that_has_it(monkeypatch):
    caps = {"avx512_bf16": False, "amx_bf16": False}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert step_dtype("auto", cpu) is None and step_dtype("float32", cpu) is None
    caps["avx512_bf16"] = True
    assert step_dtype("auto", cpu) is torch.bfloat16
    assert step_dtype("auto", gpu) is None  # launch-bound there: float32
    assert step_dtype("bfloat16", gpu) is torch.bfloat16
    with pytest.raises(ValueError, match="'half': use auto, float32 or bfloat16"):
        step_dtype("half", cpu)
    with pytest.raises(ValueError, match="training precision 'half'"):
        TrainSettings(precision="half")
