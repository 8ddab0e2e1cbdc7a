"""The network and its safetensors model file: round trip, and refusal of unsafe or broken files."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from kwsops.config import FeatureSettings
from kwsops.ml.model import (
    ModelFileError,
    build_model,
    count_parameters,
    default_arch,
    load_model,
    predict_proba,
    read_model_meta,
    save_model,
)

LABELS = ["catch", "gun", "index", "like", "relax", "rock"]


def make_meta() -> dict:
    return {
        "labels": LABELS,
        "features": FeatureSettings().as_dict(),
        "arch": default_arch(),
        "params": {"batch_size": 32},
        "fold": 1,
        "metrics": {"val_acc": 0.9},
    }


@pytest.fixture
def trained(tmp_path) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = build_model(default_arch(), len(LABELS), 40)
    model.train()
    with torch.no_grad():  # move the batch-norm running stats away from their defaults
        model(torch.randn(8, 40, 261) * 3 - 5)
    model.eval()
    return model, save_model(tmp_path / "model.safetensors", model, make_meta())


def test_shapes_and_size():
    model = build_model(default_arch(), 6, 40).eval()
    out = model(torch.randn(3, 40, 261))
    assert out.shape == (3, 6)
    assert 10_000 < count_parameters(model) < 500_000


def test_per_clip_normalisation_ignores_loudness():
    model = build_model(default_arch(), 6, 40).eval()
    x = torch.randn(2, 40, 131)
    with torch.no_grad():
        assert torch.allclose(model(x), model(x + 4.0), atol=1e-4)  # +4 in log = +17 dB


def test_round_trip_gives_identical_outputs(trained):
    model, path = trained
    loaded, meta = load_model(path)
    assert not loaded.training
    assert meta == make_meta()
    x = torch.randn(4, 40, 261)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert torch.allclose(predict_proba(loaded, x).sum(1), torch.ones(4))


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_pickle_renamed_model_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"state": _Exploit(marker)}))
    with pytest.raises(ModelFileError, match=r"model\.safetensors.*not a safetensors"):
        load_model(path)
    assert not marker.exists()
    torch_style = tmp_path / "zip" / "model.safetensors"  # what torch.save would write
    torch_style.parent.mkdir()
    torch.save({"x": _Exploit(marker)}, torch_style)
    with pytest.raises(ModelFileError):
        load_model(torch_style)
    assert not marker.exists()


def test_missing_or_corrupt_metadata_is_refused(tmp_path, trained):
    model, _ = trained
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    cases = {
        "none.safetensors": None,
        "notjson.safetensors": {"kwsops": "{not json"},
        "partial.safetensors": {"kwsops": json.dumps({"labels": LABELS})},
        "nolabels.safetensors": {"kwsops": json.dumps({**make_meta(), "labels": []})},
    }
    for name, metadata in cases.items():
        save_file(state, str(tmp_path / name), metadata=metadata)
        with pytest.raises(ModelFileError, match=name.replace(".", r"\.")):
            read_model_meta(tmp_path / name)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "absent.safetensors")


def test_weights_that_do_not_fit_the_arch_are_refused(tmp_path, trained):
    model, _ = trained
    meta = {**make_meta(), "arch": {**default_arch(), "widths": [8, 8, 8]}}
    path = save_model(tmp_path / "odd.safetensors", model, meta)
    with pytest.raises(ModelFileError, match="odd.safetensors.*do not match"):
        load_model(path)
