"""`kwsops detect` scores with onnxruntime: the same probabilities as PyTorch's fold models on
real clips and on every window of a stream, a scorer built once per set of models and cached by
their content, and a detect process that never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from kwsops.compare.detect import Detector
from kwsops.compare.predict import load_ensemble
from kwsops.compare.scorer import META_FILE, ScorerError, load_scorer, models_key
from kwsops.config import FeatureSettings
from kwsops.ml.features import log_mel
from kwsops.procs import owner_tag
from tests.helpers.trained import LABELS, Trained, fold_paths

RATE = 16_000
TOLERANCE = 1e-4


def torch_probs(trained: Trained, audio: np.ndarray) -> np.ndarray:
    """What `kwsops predict` computes for clips ``[N, samples]``: log_mel, then the mean of the
    fold models' softmaxes in the first fold's label order."""
    models, columns, meta = load_ensemble(fold_paths(trained))
    features = log_mel(torch.from_numpy(audio), FeatureSettings(**meta["features"]))
    with torch.no_grad():
        return np.mean([torch.softmax(m(features), dim=1)[:, cols].numpy()
                        for m, cols in zip(models, columns, strict=True)], axis=0)  # fmt: skip


def clips(trained: Trained, per_label: int = 4) -> np.ndarray:
    """Preprocess output clips (2.6 s, as data/output holds them) of every class."""
    paths = [p for label_dir in sorted(trained.ws.output_dir.iterdir()) if label_dir.is_dir()
             for p in sorted(label_dir.glob("*.wav"))[:per_label]]  # fmt: skip
    return np.stack([sf.read(p, dtype="float32")[0] for p in paths])


def test_the_onnx_scorer_scores_real_clips_as_torch_does(trained, tmp_path):
    scorer = load_scorer(tmp_path, fold_paths(trained))
    audio = clips(trained)
    assert audio.shape[1] == scorer.window
    got = scorer.score(scorer.log_mel(audio))
    expected = torch_probs(trained, audio)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert len(set(expected.argmax(1).tolist())) > 1  # the clips are not all one class


class Recording:
    """A scorer that keeps every batch of window probabilities it gives."""

    def __init__(self, scorer):
        self.scorer, self.probs = scorer, []
        self.labels, self.settings, self.window = scorer.labels, scorer.settings, scorer.window
        self.log_mel = scorer.log_mel

    def score(self, features: np.ndarray) -> np.ndarray:
        self.probs.append(self.scorer.score(features))
        return self.probs[-1]


def test_every_window_of_a_stream_scores_as_torch_scores_it_alone(trained, tmp_path):
    words = clips(trained, per_label=1)
    rng = np.random.default_rng(5)
    stream = (rng.standard_normal(len(words) * RATE * 3) * 3e-4).astype(np.float32)
    for index, clip in enumerate(words):  # a clip every 3 s, overlapping the next one's start
        stream[index * 3 * RATE : index * 3 * RATE + len(clip)] += clip
    scorer = Recording(load_scorer(tmp_path, fold_paths(trained)))
    detector = Detector(scorer, threshold=0.5, batch_windows=16)
    for start in range(0, len(stream), 7_000):  # blocks that cut windows and batches anywhere
        detector.feed(stream[start : start + 7_000])
    got = np.concatenate(scorer.probs)
    hop, window = detector.hop, detector.window
    assert len(got) == (len(stream) - window) // hop + 1
    windows = np.stack([stream[i * hop : i * hop + window] for i in range(len(got))])
    expected = torch_probs(trained, windows)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert {LABELS[0], LABELS[1]} <= {scorer.labels[i] for i in expected.argmax(1)}


def test_the_scorer_is_built_once_and_keyed_by_the_models_content(trained, tmp_path):
    paths = fold_paths(trained)
    first = load_scorer(tmp_path, paths)
    folder = tmp_path / "scorers" / models_key(paths)
    stamp = (folder / META_FILE).stat().st_mtime_ns
    assert load_scorer(tmp_path, paths).labels == first.labels
    assert (folder / META_FILE).stat().st_mtime_ns == stamp  # read, not built again
    # the same files elsewhere (a git or ClearML revision's scratch copy): the same scorer
    copies = []
    for index, path in enumerate(paths):
        copies.append(tmp_path / "copy" / f"fold_{index}" / path.name)
        copies[-1].parent.mkdir(parents=True)
        shutil.copy(path, copies[-1])
    assert models_key(copies) == models_key(paths)
    with copies[-1].open("ab") as handle:  # a retrained fold: another scorer
        handle.write(b"\0")
    assert models_key(copies) != models_key(paths)


def test_a_killed_build_leaves_nothing_that_stays(trained, tmp_path):
    paths = fold_paths(trained)
    scorers = tmp_path / "scorers"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    child.wait()  # a pid that is no process now: the build it names was killed
    key = models_key(paths)
    _, started, machine = owner_tag().split(".", 2)
    leftover = scorers / f".{key}.tmp-{child.pid}.{started}.{machine}-x"
    leftover.mkdir(parents=True)
    (leftover / "front.onnx").write_bytes(b"half")
    load_scorer(tmp_path, paths)
    assert sorted(p.name for p in scorers.iterdir()) == [key]


def test_a_model_that_cannot_be_built_gets_one_line(trained, tmp_path):
    bad = tmp_path / "fold_0" / "model.safetensors"
    bad.parent.mkdir()
    bad.write_bytes(b"not a model")
    with pytest.raises(ScorerError) as caught:
        load_scorer(tmp_path / "cache", [bad])
    message = str(caught.value)
    assert message.startswith("cannot build the ONNX scorer: ") and "\n" not in message
    assert str(bad) in message
    assert not any((tmp_path / "cache" / "scorers").iterdir())  # nothing half-built left


def test_the_detect_process_never_imports_torch(trained, tmp_path):
    workspace = tmp_path / "ws"
    shutil.copytree(trained.ws.root, workspace, symlinks=True)
    shutil.rmtree(workspace / ".kwsops" / "cache" / "scorers", ignore_errors=True)
    stream = tmp_path / "stream.wav"
    sf.write(stream, np.concatenate(list(clips(trained, per_label=1))), RATE)
    code = (
        "import json, sys\n"
        "from kwsops.cli.main import main\n"
        f"code = main(['-C', {str(workspace)!r}, 'detect', '--json', '--threshold', '0.5', "
        f"{str(stream)!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(2):  # first the scorer is built (in a child), then it is read from the cache
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, check=False, timeout=600)  # fmt: skip
        lines = done.stdout.splitlines()
        assert done.returncode == 0, done.stderr
        result = json.loads(lines[-1])
        assert result == {"code": 0, "heavy": []}, result
        found = [json.loads(line)["label"] for line in lines[:-1]]
        assert LABELS[0] in found, done.stdout
    assert len(list((workspace / ".kwsops" / "cache" / "scorers").iterdir())) == 1
