"""Spectrogram files streamed to disk and read back row by row (kwsops.ml.store)."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from kwsops.atomic import remove_leftovers
from kwsops.config import FeatureSettings
from kwsops.ml.features import load_split, log_mel, make_spectrogram_dataset
from kwsops.ml.store import FeatureStore, Rows, SpectrogramDataError, mean_power, stream_tensors
from tests.helpers.clips import MANIFEST_FIELDS, RATE, write_clips


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory) -> Path:
    return write_clips(tmp_path_factory.mktemp("output"), speakers=4, takes=2)


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory, output_dir) -> Path:
    spec = tmp_path_factory.mktemp("spec")
    make_spectrogram_dataset(output_dir, spec, folds=2)
    return spec


def test_written_files_are_safetensors_with_the_log_mels_of_the_clips(spec_dir, output_dir):
    for which in ("train", "test"):
        path = spec_dir / f"{which}.safetensors"
        with safe_open(str(path), framework="pt") as handle:
            assert sorted(handle.keys()) == ["features", "labels"]
            features = handle.get_tensor("features")
        assert features.dtype == torch.float32 and torch.equal(
            load_file(str(path))["features"], features
        )
        ids = load_split(spec_dir, which).ids
        waves = np.stack([sf.read(output_dir / i, dtype="float32")[0] for i in ids])
        assert features.shape == (len(ids), 40, RATE // 160 + 1)
        torch.testing.assert_close(features, log_mel(torch.from_numpy(waves)), rtol=0, atol=1e-4)


def test_store_indexing_reads_what_the_tensor_holds(spec_dir):
    path = spec_dir / "train.safetensors"
    full = load_file(str(path))["features"]
    store = load_split(spec_dir, "train").features
    assert isinstance(store, FeatureStore) and store.shape == full.shape == (len(store), 40, 101)
    n = len(full)
    mask = np.zeros(n, dtype=bool)
    mask[[1, 4]] = True
    for index in (
        3,
        -1,
        np.int64(2),
        slice(2, 9),
        slice(None, None, 3),
        slice(n - 2, n + 5),
        np.array([5, 1, 1, 7, 0, 6, 5], dtype=np.int64),  # unsorted, repeats, runs
        np.array([-1, 0]),
        torch.tensor([4, 4, 2]),
        np.array([], dtype=np.int64),
        mask,
    ):
        got = store[index]
        expected = full[torch.from_numpy(index) if isinstance(index, np.ndarray) else index]
        assert got.dtype == torch.float32 and torch.equal(got, expected), index
    with pytest.raises(IndexError, match="out of bounds"):
        store[n]
    with pytest.raises(IndexError, match="out of bounds"):
        store[np.array([0, n])]
    order = torch.randperm(n)
    rows = Rows(store, order.numpy())
    assert torch.equal(rows[2:7], full[order[2:7]]) and len(rows) == n
    assert torch.equal(rows[torch.tensor([3, 0])], full[order[[3, 0]]])
    torch.testing.assert_close(mean_power(rows, batch=5), full.double().exp().mean((0, 2)).float())


def test_store_reopens_in_a_forked_child_and_after_pickling(spec_dir):
    import pickle

    store = load_split(spec_dir, "train").features
    first = store[0]
    copy = pickle.loads(pickle.dumps(store))
    assert torch.equal(copy[0], first)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reads through its own descriptor
        os.close(read)
        ok = torch.equal(store[0], first) and store._pid == os.getpid()
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    assert store._pid == os.getpid()


def test_float16_files_are_read_as_float32(tmp_path):
    values = torch.randn(5, 3, 4)
    path = tmp_path / "half.safetensors"
    specs = {"features": (np.float16, (5, 3, 4)), "labels": (np.int64, (5,))}
    with stream_tensors(path, specs) as out:
        out.write("labels", np.arange(5))
        out.write("features", values[:2])
        out.write("features", values[2:])
    with safe_open(str(path), framework="pt") as handle:  # any safetensors reader opens it
        assert handle.get_tensor("features").dtype == torch.float16
    store = FeatureStore(path)
    assert store.stored_dtype == "F16" and store[[4, 0]].dtype == torch.float32
    assert torch.equal(store[[4, 0]], values.half().float()[[4, 0]])


def test_bad_files_give_one_clear_error(tmp_path, spec_dir):
    good = (spec_dir / "train.safetensors").read_bytes()
    header = 8 + int.from_bytes(good[:8], "little")
    garbled = bytearray(good)
    garbled[header - 20 : header - 10] = b"#" * 10  # inside the JSON header
    shape = re.search(rb'"shape":\[(\d+)', good)
    wrong_shape = good.replace(shape.group(0), shape.group(0)[:-1] + b"9" * len(shape.group(1)), 1)
    for name, data in (
        ("truncated", good[: len(good) - 1000]),
        ("garbled", bytes(garbled)),
        ("short", good[:5]),
        ("huge-header", (10**12).to_bytes(8, "little") + good[8:]),
        ("wrong-shape", wrong_shape),
        ("pickle", b"\x80\x04garbage"),
    ):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with pytest.raises(SpectrogramDataError) as caught:
            FeatureStore(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and "rerun MakeSpectrograms" in message, name
        assert "\n" not in message
    with pytest.raises(SpectrogramDataError, match="not found; run MakeSpectrograms"):
        FeatureStore(tmp_path / "missing.safetensors")
    shrinking = tmp_path / "shrinking.safetensors"
    shrinking.write_bytes(good)
    store = FeatureStore(shrinking)
    os.truncate(shrinking, header + 100)  # cut while open: the read says so
    with pytest.raises(SpectrogramDataError, match="ends before byte"):
        store[len(store) - 1]


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "rows.safetensors"
    specs = {"features": (np.float32, (4, 2, 3))}
    with pytest.raises(ValueError, match="got 24 of 96 bytes"), stream_tensors(path, specs) as out:
        out.write("features", np.zeros((1, 2, 3)))
    with pytest.raises(RuntimeError, match="stop"), stream_tensors(path, specs) as out:
        out.write("features", np.zeros((4, 2, 3)))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


KILL_MID_WRITE = """
import os, signal, sys
from kwsops.ml.features import make_spectrogram_dataset
def progress(done, total, detail):
    os.kill(os.getpid(), signal.SIGKILL)  # killed after the first batch is written
make_spectrogram_dataset(sys.argv[1], sys.argv[2], progress=progress, folds=2)
"""


def test_a_killed_run_leaves_no_spectrogram_file(tmp_path, output_dir):
    spec = tmp_path / "spec"
    run = subprocess.run(
        [sys.executable, "-c", KILL_MID_WRITE, str(output_dir), str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    left = sorted(p.name for p in spec.iterdir())
    assert left and all(name.startswith(".train.safetensors.tmp-") for name in left), left
    assert remove_leftovers(spec) and list(spec.iterdir()) == []


def _peak_growth_kib(action) -> int:
    """How far the resident set rose above its size before ``action`` (Linux /proc)."""

    def status(field: str) -> int:
        text = Path("/proc/self/status").read_text()
        return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1))

    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = status("VmRSS")
    action()
    return status("VmHWM") - before


@pytest.mark.filterwarnings("ignore:At least one mel filterbank")  # more bands than FFT bins
def test_memory_of_the_stage_does_not_grow_with_the_clips(tmp_path, monkeypatch):
    """1500 clips whose features (256 mels) weigh 157 MB: the stage's peak resident memory
    rises by less than half of that: no split is ever whole in memory (before streaming, 542
    MiB: every clip twice and the train split once more)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak resident set size")
    monkeypatch.setenv("KWSOPS_TORCH_THREADS", "1")
    source = write_clips(tmp_path / "one", labels=("a", "b"), speakers=4, takes=1)
    clips = sorted(source.glob("*/*.wav"))
    output, rows = tmp_path / "output", []
    for n in range(1500):  # hard links: the same few recordings under many names
        clip = clips[n % len(clips)]
        name = f"{clip.parent.name}/{clip.stem}-{n}.wav"
        (output / clip.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(clip, output / name)
        rows.append({"source": name, "label": clip.parent.name, "speaker": f"s{n}",
                     "status": "kept", "output": name})  # fmt: skip
    with (output / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    settings = FeatureSettings(n_mels=256, f_min=0.0, f_max=8_000.0)
    make_spectrogram_dataset(source, tmp_path / "warm", settings, folds=2)  # imports, transform
    spec = tmp_path / "spec"
    grew = _peak_growth_kib(lambda: make_spectrogram_dataset(output, spec, settings, folds=2))
    features = sum(len(FeatureStore(p)) for p in spec.glob("*.safetensors")) * 256 * 101 * 4
    assert features > 150e6
    assert grew * 1024 < features / 2, f"peak grew {grew // 1024} MiB for {features // 2**20} MiB"
    shutil.rmtree(output)


def test_a_bad_clip_stops_the_stage_with_its_name_and_no_file(tmp_path, output_dir):
    output = tmp_path / "output"
    shutil.copytree(output_dir, output)
    bad = sorted(output.glob("gun/*.wav"))[1]
    sf.write(bad, np.zeros(8_000, dtype=np.float32), 8_000)
    spec = tmp_path / "spec"
    with pytest.raises(SpectrogramDataError) as caught:
        make_spectrogram_dataset(output, spec, folds=2)
    assert str(caught.value) == (
        f"{bad}: sample rate 8000 Hz, features expect 16000 Hz; rerun Preprocess"
    )
    assert list(spec.iterdir()) == []


class _RecordingStore(FeatureStore):
    """The real store, noting how many rows each access reads."""

    reads: list[int]

    def __getitem__(self, index) -> torch.Tensor:
        rows = super().__getitem__(index)
        self.reads.append(len(rows) if rows.dim() == 3 else 1)
        return rows


def test_training_reads_the_features_one_batch_at_a_time(spec_dir, tmp_path, monkeypatch):
    from dataclasses import replace

    from kwsops.config import TrainSettings
    from kwsops.ml import store as store_module
    from kwsops.ml import training
    from kwsops.ml.fold.setup import FoldOptions

    monkeypatch.setattr(training, "_EVAL_BATCH", 3)  # validation pass: 3 rows a read
    monkeypatch.setattr(store_module, "_SOURCE_BATCH", 3)  # the noise bank's mean spectrum
    split = load_split(spec_dir, "train")
    recording = _RecordingStore(spec_dir / "train.safetensors")
    recording.reads = []
    settings = TrainSettings(batch_size=3, epochs=1, folds=2)
    result = training.train_fold(
        spec_dir,
        tmp_path,
        settings,
        0,
        options=FoldOptions(data=replace(split, features=recording)),
        threads=1,
    )
    assert result.n_train > 3 and sum(recording.reads) >= result.n_train + result.n_val
    assert max(recording.reads) <= 3  # never a fold or a split at once
