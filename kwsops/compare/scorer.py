"""The fold ensemble as onnxruntime sessions, for `kwsops detect`: no torch in the process.

Importing torch costs about 490 MiB of RSS here (a CUDA build maps its libraries) and a
second or two of CPU, more than the detector itself; a process with detect's imports and
onnxruntime is 70 MiB, and detect peaks at 135 MiB on an hour of audio. A
revision's scorer (:mod:`kwsops.compare.scorer_build`: the log-mel front end and the fold
classifier as two ONNX graphs, checked against PyTorch) is made on first use, in a child
process, and cached in the workspace under ``.kwsops/cache/scorers/<key>``, the key a digest
of the fold model files' contents and :data:`SCORER_VERSION`. The same models reached as
``workspace:``, ``git:``, ``clearml:`` or a registry version share one scorer, a revision
trained before this existed works, and a retrained fold can never meet a stale scorer. Nothing
is written into data/models, so the versioned models and their stamps stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from kwsops.atomic import atomic_dir, remove_leftovers
from kwsops.config import THREADS_ENV, FeatureSettings, resolve_threads
from kwsops.stamps import file_sha256

SCORER_VERSION = 2  # bump when the graphs change: every cached scorer is then rebuilt
FRONT_FILE, CLASSIFIER_FILE, META_FILE = "front.onnx", "classifier.onnx", "meta.json"


class ScorerError(ValueError):
    """The revision's ONNX scorer cannot be built or read; the message says why."""


def models_key(model_paths: list[Path]) -> str:
    """A digest of the fold files' contents, in fold order, and the scorer's version."""
    digest = hashlib.sha256(f"kwsops-scorer-{SCORER_VERSION}".encode())
    for path in model_paths:
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:32]


def inference_threads() -> int:
    """``$KWSOPS_TORCH_THREADS`` when set, else one: a batch of windows is small work, and on
    this shared 2-core machine two threads took 2.6x the CPU-seconds and 2.7x the wall clock
    of one on an hour of audio (measured: 72.8 vs 28.1 CPU-s, 197 vs 73 s)."""
    return resolve_threads() if os.environ.get(THREADS_ENV, "").strip() else 1


def session(path: Path, threads: int = 1):
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: detect's stderr is for the user
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Scorer:
    """Log-mel of audio and the ensemble's probabilities of log-mel windows, with numpy."""

    def __init__(self, folder: Path, threads: int = 1):
        try:
            self.meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            self.front = session(folder / FRONT_FILE, threads)
            self.classifier = session(folder / CLASSIFIER_FILE, threads)
        except (OSError, ValueError, RuntimeError) as exc:  # ort raises its own RuntimeErrors
            raise ScorerError(f"{folder}: cannot read the ONNX scorer ({exc}); delete the "
                              "folder and run again to rebuild it") from None  # fmt: skip
        self.labels: list[str] = list(self.meta["labels"])
        self.settings = FeatureSettings(**self.meta["features"])
        self.window = int(self.meta["window"])

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """``[B, samples]`` float32 -> ``[B, n_mels, frames]``, as ``log_mel`` computes it."""
        return self.front.run(None, {"audio": np.ascontiguousarray(audio, np.float32)})[0]

    def score(self, features: np.ndarray) -> np.ndarray:
        """``[N, classes]`` mean fold probabilities, columns in ``self.labels`` order."""
        features = np.ascontiguousarray(features, np.float32)
        return self.classifier.run(None, {"features": features})[0]


def load_scorer(cache_dir: Path, model_paths: list[Path]) -> Scorer:
    """The cached scorer of ``model_paths``, built first (a child process with torch) if needed."""
    folder = Path(cache_dir) / "scorers" / models_key(model_paths)
    if not (folder / META_FILE).is_file():
        remove_leftovers(folder.parent)  # the half-built scorers of killed runs
        with atomic_dir(folder) as tmp:
            command = [sys.executable, "-m", "kwsops.compare.scorer_build", str(tmp),
                       *map(str, model_paths)]  # fmt: skip
            # the child imports the kwsops this process runs, wherever it was found
            source = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
            done = subprocess.run(command, capture_output=True, text=True, check=False,
                                  env={**os.environ, "PYTHONPATH": path})  # fmt: skip
            if done.returncode != 0:
                lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
                raise ScorerError(f"cannot build the ONNX scorer: {lines[-1]}")
    return Scorer(folder, inference_threads())
