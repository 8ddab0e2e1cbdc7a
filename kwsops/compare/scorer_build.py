"""Build the ONNX scorer `kwsops detect` runs: the one place detect's models meet PyTorch.

Run as ``python -m kwsops.compare.scorer_build OUT_DIR MODEL...`` by
:func:`kwsops.compare.scorer.load_scorer` when a revision's scorer is not cached yet, so the
detect process itself never imports torch. It writes into ``OUT_DIR``:

- ``front.onnx``: :class:`kwsops.ml.frontend.LogMel`, audio ``[batch, samples]`` (any length)
  to log-mel ``[batch, n_mels, frames]``;
- ``classifier.onnx``: :class:`kwsops.ml.frontend.Classifier`, log-mel windows to the fold
  ensemble's mean probabilities ``[batch, classes]``;
- ``meta.json``: labels, feature settings, the window in samples, the folds' content key.

Both graphs are checked with onnxruntime against PyTorch (``log_mel``, the fold models'
softmaxes, as ``kwsops predict``) on noise and tones before ``meta.json``, the file that makes
the folder complete, is written; a difference over :data:`TOLERANCE` writes nothing (exit 1).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from kwsops.atomic import atomic_write_text
from kwsops.compare.detect import window_samples
from kwsops.compare.scorer import CLASSIFIER_FILE, FRONT_FILE, META_FILE, models_key, session
from kwsops.config import FeatureSettings

TOLERANCE = 1e-4  # probabilities
# log-mel, natural log: the DFT as a float32 convolution and torch.stft's FFT round apart, most
# in quiet bands where the log magnifies it (measured: 8e-4 on noise at -70 dBFS)
FEATURE_TOLERANCE = 1e-2
OPSET = 17


def _export(network: torch.nn.Module, example: torch.Tensor, path: Path, name: str,
            axes: dict) -> None:  # fmt: skip
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), str(path), input_names=[name],
                          output_names=["out"], opset_version=OPSET,
                          dynamic_axes={name: axes, "out": {0: "batch"}}, dynamo=False)  # fmt: skip


def _check_audio(samples: int, rate: int) -> np.ndarray:
    """Four windows of test sound: low and loud noise, a tone, and a chirp over silence."""
    rng = np.random.default_rng(0)
    t = np.arange(samples) / rate
    audio = np.stack([
        rng.standard_normal(samples) * 3e-4,
        rng.standard_normal(samples) * 0.3,
        0.2 * np.sin(2 * np.pi * 440 * t),
        0.3 * np.sin(2 * np.pi * (200 + 1500 * t / t[-1]) * t) * (t > t[-1] / 2),
    ])  # fmt: skip
    return audio.astype(np.float32)


def build(out_dir: Path, model_paths: list[Path]) -> dict:
    """Write the scorer of ``model_paths`` into ``out_dir`` (which exists); its meta."""
    from kwsops.compare.predict import load_ensemble
    from kwsops.ml.features import log_mel
    from kwsops.ml.frontend import Classifier, LogMel

    torch.set_num_threads(1)
    models, columns, meta = load_ensemble(model_paths)
    settings = FeatureSettings(**meta["features"])
    window = window_samples(meta)
    front, classifier = LogMel(settings).eval(), Classifier(models, columns)
    audio = _check_audio(window, settings.sample_rate)
    with torch.no_grad():
        features = log_mel(torch.from_numpy(audio), settings)
        expected = classifier(features).numpy()
    _export(front, torch.from_numpy(audio[:2]), out_dir / FRONT_FILE, "audio",
            {0: "batch", 1: "samples"})  # fmt: skip
    _export(classifier, features[:2], out_dir / CLASSIFIER_FILE, "features", {0: "batch"})
    got_features = session(out_dir / FRONT_FILE).run(None, {"audio": audio})[0]
    got = session(out_dir / CLASSIFIER_FILE).run(None, {"features": got_features})[0]
    feature_difference = float(np.abs(got_features - features.numpy()).max())
    difference = float(np.abs(got - expected).max())
    if difference > TOLERANCE or feature_difference > FEATURE_TOLERANCE:
        raise ValueError(
            f"the ONNX scorer disagrees with PyTorch: probabilities by {difference:.2e} "
            f"(allowed {TOLERANCE:g}), log-mel by {feature_difference:.2e} (allowed "
            f"{FEATURE_TOLERANCE:g})"
        )
    written = {
        "labels": list(meta["labels"]),
        "features": settings.as_dict(),
        "window": window,
        "folds": len(models),
        "key": models_key(model_paths),
        "checked_difference": difference,
        "checked_feature_difference": feature_difference,
    }
    atomic_write_text(out_dir / META_FILE, json.dumps(written, indent=1) + "\n")
    return written


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m kwsops.compare.scorer_build OUT_DIR MODEL...", file=sys.stderr)
        return 2
    try:
        build(Path(argv[0]), [Path(p) for p in argv[1:]])
    except (ValueError, OSError, RuntimeError) as exc:
        print(" ".join(str(exc).split()), file=sys.stderr)  # one line for the caller to show
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
