"""Log-mel features, the speaker-grouped split and the packed spectrogram data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kwsops.config import FeatureSettings
from kwsops.ml.features import (
    SpectrogramDataError,
    load_split,
    log_mel,
    make_spectrogram_dataset,
    spectrogram_examples,
)
from tests.helpers.clips import RATE, tone_clip, write_clips


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory) -> Path:
    return write_clips(tmp_path_factory.mktemp("output"))


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory, output_dir) -> Path:
    spec = tmp_path_factory.mktemp("spec")
    make_spectrogram_dataset(output_dir, spec)
    return spec


def test_log_mel_shape_and_determinism():
    settings = FeatureSettings()
    waves = torch.from_numpy(np.stack([tone_clip(0, 1, 0), tone_clip(2, 3, 1)]))
    first, second = log_mel(waves, settings), log_mel(waves.clone(), settings)
    assert first.shape == (2, settings.n_mels, RATE // settings.hop_length + 1)
    assert first.dtype == torch.float32 and torch.isfinite(first).all()
    assert torch.equal(first, second)
    silent = log_mel(torch.zeros(1, RATE), settings)
    assert torch.isfinite(silent).all()  # the floor keeps digital silence finite


def test_dataset_files_shapes_and_meta(spec_dir, output_dir):
    names = sorted(p.name for p in spec_dir.iterdir())
    assert names == ["meta.json", "test.safetensors", "train.safetensors"]
    meta = json.loads((spec_dir / "meta.json").read_text())
    assert meta["labels"] == ["catch", "gun", "rock"]
    assert meta["features"] == FeatureSettings().as_dict()
    assert meta["split"] == {
        "test_size": 0.1,
        "seed": 42,
        "kind": "speaker",
        "note": "",
        "share_note": "",
        "lists": [],
    }
    train, test = load_split(spec_dir, "train"), load_split(spec_dir, "test")
    assert len(train) + len(test) == 3 * 8 * 4  # the rejected manifest row is skipped
    assert train.features.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert train.features.shape[1:] == (40, 101) == test.features.shape[1:]
    assert train.ids == meta["train"]["ids"] and test.speakers == meta["test"]["speakers"]
    assert train.feature_settings == FeatureSettings()
    # features saved are exactly what log_mel gives at predict time
    index = train.ids.index("gun/spk03__gun_002.wav")
    wave, _ = sf.read(output_dir / "gun/spk03__gun_002.wav", dtype="float32")
    direct = log_mel(torch.from_numpy(wave).unsqueeze(0))[0]
    assert torch.allclose(train.features[index], direct, atol=1e-4)


def test_split_keeps_speakers_apart_and_is_stratified(spec_dir):
    train, test = load_split(spec_dir, "train"), load_split(spec_dir, "test")
    assert set(train.speakers).isdisjoint(test.speakers)
    assert sorted(torch.bincount(test.labels).tolist()) == [4, 4, 4]  # one speaker, every label


def test_safetensors_only_no_pickle(spec_dir):
    for path in spec_dir.iterdir():
        assert path.suffix in {".safetensors", ".json"}
        head = path.read_bytes()[:2]
        assert head != b"\x80\x04" and head[:1] != b"\x80"  # no pickle protocol header


def test_bad_inputs_give_clear_errors(tmp_path, spec_dir):
    with pytest.raises(SpectrogramDataError, match="manifest not found"):
        make_spectrogram_dataset(tmp_path, tmp_path / "spec")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("meta.json", "test.safetensors"):
        (broken / name).write_bytes((spec_dir / name).read_bytes())
    (broken / "train.safetensors").write_bytes(b"\x80\x04garbage")
    with pytest.raises(SpectrogramDataError, match="train.safetensors"):
        load_split(broken, "train")


def test_spectrogram_examples_png(spec_dir, tmp_path):
    path = spectrogram_examples(spec_dir, tmp_path / "plots" / "examples.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_noise_recordings_become_clip_length_pieces(tmp_path, monkeypatch):
    from kwsops.audio.manifest import ManifestRow
    from kwsops.ml import features

    rng = np.random.default_rng(0)
    lengths = {"long.wav": 7.5, "short.wav": 0.4, "silent.wav": 3.0}
    rows = []
    for name, seconds in lengths.items():
        level = 0.0 if name == "silent.wav" else 0.1
        sf.write(tmp_path / name, level * rng.standard_normal(int(seconds * RATE)), RATE)
        rows.append(ManifestRow(f"_bg/{name}", None, None, "noise", output=name))
    pieces = features.noise_pieces(tmp_path, rows, RATE, RATE)
    assert pieces.shape == (7 + 1, RATE)  # 7 whole seconds, the short one repeated, no silence
    short = sf.read(tmp_path / "short.wav", dtype="float32")[0]
    assert np.array_equal(pieces[-1][: len(short)], short)
    monkeypatch.setattr(features, "MAX_NOISE_PIECES", 3)
    assert len(features.noise_pieces(tmp_path, rows, RATE, RATE)) <= 3


def test_spectrogram_examples_draw_names_as_text_without_control_bytes(spec_dir, tmp_path):
    """A speaker (from a file name) holding an escape sequence: the title shows it printable,
    and matplotlib never warns with a raw ESC byte ("Glyph 27 missing")."""
    import json
    import shutil
    import warnings

    copy = tmp_path / "spec"
    shutil.copytree(spec_dir, copy)
    meta = json.loads((copy / "meta.json").read_text())
    for side in ("train", "test"):
        meta[side]["speakers"] = ["\x1b[31mred\x1b[0m\x07"] * len(meta[side]["speakers"])
    (copy / "meta.json").write_text(json.dumps(meta))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spectrogram_examples(copy, tmp_path / "examples.png")
    assert not [w for w in caught if "\x1b" in str(w.message) or "\x07" in str(w.message)]
