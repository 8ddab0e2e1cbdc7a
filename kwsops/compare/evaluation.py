"""Evaluate fold models on the held-out test clips, and compare revisions fairly.

Every revision is scored on the same test clips. Per revision: the mean over folds of
accuracy and of per-class precision/recall/F1, with a seeded percentile bootstrap over the
test clips (the clips are resampled, the models stay fixed); the fold ensemble (mean of fold
softmaxes); the mean row-normalised confusion matrix; size and one-thread CPU latency.
Revisions are compared pairwise on the ensemble's per-clip correctness (McNemar).
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from kwsops.compare import breakdown
from kwsops.compare.spotting import spotting_summary
from kwsops.config import FeatureSettings, resolve_threads
from kwsops.keywords import DEFAULT_BUDGET, is_word
from kwsops.ml.features import SpecSplit, log_mel
from kwsops.ml.store import FeatureStore

N_BOOT = 2000
SEED = 42
LEVEL = 0.95
LATENCY_BATCH = 8
LATENCY_REPEATS = 7
EXACT_BELOW = 25  # discordant pairs: below this McNemar uses the exact binomial test


class EvaluationError(ValueError):
    """A model cannot be scored on this test set; the message says why."""


def resample_weights(n: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """``[n_boot, n]`` how often each clip is drawn in each bootstrap resample (seeded)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    weights = np.zeros((n_boot, n))
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1.0)
    return weights


def interval(point: float, samples: np.ndarray, level: float = LEVEL) -> dict:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return {"mean": float(point), "low": float(low), "high": float(high)}


def class_scores(
    weights: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 per class for each row of clip ``weights`` (``[B, k]`` each);
    a class never predicted (or never present) scores 0, as sklearn's zero_division=0."""
    truth = np.eye(k)[y_true]
    pred = np.eye(k)[y_pred]
    tp, n_pred, n_true = weights @ (truth * pred), weights @ pred, weights @ truth
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, tp / n_pred, 0.0)
        recall = np.where(n_true > 0, tp / n_true, 0.0)
        f1 = np.where(n_pred + n_true > 0, 2 * tp / (n_pred + n_true), 0.0)
    return precision, recall, f1


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(k * np.asarray(y_true) + np.asarray(y_pred), minlength=k * k).reshape(k, k)


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (a row without clips stays all zero)."""
    matrix = np.asarray(matrix, dtype=float)
    sums = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's test on paired per-clip correctness: exact binomial for few discordant pairs,
    else chi-square with continuity correction. ``b``: only A right; ``c``: only B right."""
    from scipy import stats

    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    if b + c == 0:
        return {"b": 0, "c": 0, "p_value": 1.0, "method": "McNemar (no discordant clips)"}
    if b + c < EXACT_BELOW:
        p = stats.binomtest(b, b + c, 0.5).pvalue
        return {"b": b, "c": c, "p_value": float(min(p, 1.0)), "method": "McNemar exact"}
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    p = float(stats.chi2.sf(statistic, 1))
    return {"b": b, "c": c, "p_value": p, "method": "McNemar chi² (continuity corrected)"}


def score_folds(
    fold_probs: list[np.ndarray], y_true: np.ndarray, label_names: list[str],
    n_boot: int = N_BOOT, seed: int = SEED,
) -> dict:  # fmt: skip
    """Metrics of one revision from each fold's softmax ``[N, k]`` on the same test clips."""
    if not fold_probs:
        raise EvaluationError("no fold models to evaluate")
    y_true = np.asarray(y_true)
    n, k = len(y_true), len(label_names)
    if n == 0:
        raise EvaluationError("the test split has no clips")
    preds = [p.argmax(axis=1) for p in fold_probs]
    correct = np.stack([pred == y_true for pred in preds])  # [folds, N]
    weights = resample_weights(n, n_boot, seed)
    ones = np.ones((1, n))
    per_fold = [class_scores(ones, y_true, pred, k) for pred in preds]
    boot_f1 = np.mean([class_scores(weights, y_true, p, k)[2].mean(axis=1) for p in preds], 0)
    macro_f1 = float(np.mean([f1.mean() for _, _, f1 in per_fold]))
    ensemble = np.mean(fold_probs, axis=0).argmax(axis=1) == y_true
    support = np.bincount(y_true, minlength=k)
    per_class = [
        {
            "label": name,
            "precision": float(np.mean([s[0][0, i] for s in per_fold])),
            "recall": float(np.mean([s[1][0, i] for s in per_fold])),
            "f1": float(np.mean([s[2][0, i] for s in per_fold])),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    ]
    confusion = np.mean([normalise_rows(confusion_counts(y_true, p, k)) for p in preds], 0)
    per_clip = correct.mean(axis=0)
    return {
        "accuracy": {
            **interval(per_clip.mean(), weights @ per_clip / n),
            "per_fold": [float(c.mean()) for c in correct],
        },
        "macro_f1": interval(macro_f1, boot_f1),
        "ensemble_accuracy": interval(ensemble.mean(), weights @ ensemble / n),
        "per_class": per_class,
        "confusion": confusion.round(6).tolist(),
        "ensemble_correct": ensemble.astype(int).tolist(),
    }


class RecomputedFeatures:
    """The test clips' log-mels with a model's own feature settings, computed from their wavs in
    data/output when indexed (``[a:b]``, an int, an index array): one batch in memory at a time,
    like the packed :class:`kwsops.ml.store.FeatureStore` it stands in for."""

    def __init__(self, settings: FeatureSettings, paths: list[Path]):
        import soundfile as sf

        self.settings, self.paths = settings, paths
        lengths = []
        for path in paths:  # every clip checked before a model runs
            try:
                info = sf.info(path)
            except (OSError, RuntimeError) as exc:
                raise self._unreadable(path, exc) from None
            lengths.append(math.ceil(info.frames * settings.sample_rate / info.samplerate))
        self.samples = max(lengths, default=0)

    @staticmethod
    def _unreadable(path: Path, exc: Exception) -> EvaluationError:
        return EvaluationError(
            f"{path}: needed to recompute features with the model's settings, "
            f"but it cannot be read ({exc}); run Preprocess again"
        )

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> torch.Size:
        frames = self.samples // self.settings.hop_length + 1
        return torch.Size((len(self.paths), self.settings.n_mels, frames))

    def __getitem__(self, index) -> torch.Tensor:
        import soundfile as sf

        from kwsops.audio.clip import resample

        picked = np.arange(len(self.paths))[
            index.cpu().numpy() if torch.is_tensor(index) else index
        ]
        batch = np.zeros((picked.size, self.samples), dtype=np.float32)
        for row, i in zip(batch, np.atleast_1d(picked), strict=True):
            try:
                audio, rate = sf.read(self.paths[i], dtype="float32", always_2d=True)
            except (OSError, RuntimeError) as exc:
                raise self._unreadable(self.paths[i], exc) from None
            clip = resample(audio.mean(axis=1), rate, self.settings.sample_rate)[: self.samples]
            row[: len(clip)] = clip
        mels = log_mel(torch.from_numpy(batch), self.settings)
        return mels[0] if picked.ndim == 0 else mels


def features_for(
    settings: dict, split: SpecSplit, output_dir: Path
) -> tuple[FeatureStore | torch.Tensor | RecomputedFeatures, bool]:
    """The test clips' log-mels with a model's feature settings: the packed ones when they
    match, else recomputed per batch from the test clips' wavs in data/output. Both are read
    when indexed, never whole. (features, recomputed)"""
    wanted = FeatureSettings(**settings)
    if wanted == split.feature_settings:
        return split.features, False
    return RecomputedFeatures(wanted, [Path(output_dir) / clip_id for clip_id in split.ids]), True


def align_labels(model_labels: list[str], test_labels: list[str], where: str) -> list[int]:
    """Column of each test label in the model's output (the model may order them otherwise)."""
    if sorted(model_labels) != sorted(test_labels):
        raise EvaluationError(
            f"{where}: trained on labels {model_labels}, the test set has {test_labels}; "
            "a comparison needs the same labels"
        )
    return [model_labels.index(name) for name in test_labels]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_latency(
    model: torch.nn.Module, sample: torch.Tensor,
    batch: int = LATENCY_BATCH, repeats: int = LATENCY_REPEATS,
) -> float:  # fmt: skip
    """Median CPU milliseconds per clip, one thread, on a small batch (after one warm-up)."""
    model = model.cpu().eval()
    clips = sample[:batch].cpu()
    times = []
    with torch_threads(1), torch.inference_mode():
        model(clips)
        for _ in range(repeats):
            tic = time.perf_counter()
            model(clips)
            times.append(time.perf_counter() - tic)
    return 1000 * statistics.median(times) / max(len(clips), 1)


def flat_params(meta: dict) -> dict:
    """The training params and architecture of a model file, flattened (``augment.mixup``)."""

    def walk(prefix: str, value: object, out: dict) -> dict:
        if isinstance(value, dict) and value:
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else str(key), value[key], out)
        else:
            out[prefix] = value if isinstance(value, int | float | str | bool) else str(value)
        return out

    params = {k: v for k, v in dict(meta.get("params") or {}).items() if k != "extra"}
    flat = walk("", params, {})
    walk("arch", meta.get("arch") or {}, flat)
    if meta.get("features"):
        walk("features", meta["features"], flat)
    return flat


def evaluate_models(
    paths: list[Path],
    split: SpecSplit,
    output_dir: Path,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    budget: float = DEFAULT_BUDGET,
) -> dict:
    """Score the fold models in ``paths`` on ``split`` (the test clips); a JSON-able dict.
    Inference uses ``$KWSOPS_TORCH_THREADS`` threads (default: every core), as training does.
    Accuracy is on the word clips; ``spotting`` has the spotter figures at the threshold for
    ``budget`` false alarms per hour (:mod:`kwsops.compare.spotting`)."""
    with torch_threads(resolve_threads()):
        return _evaluate_models(paths, split, output_dir, n_boot, seed, budget)


def _word_accuracy(scores: dict, fold_probs: list[np.ndarray], y_true: np.ndarray,
                   label_names: list[str], n_boot: int, seed: int) -> None:  # fmt: skip
    """Accuracy (and the ensemble's) on the word clips only: _unknown_ and _silence_ clips
    are the spotter's business (its miss and false-alarm rates), not the words' accuracy."""
    words = np.array([is_word(label_names[i]) for i in y_true], dtype=bool)
    if words.all() or not words.any():
        return
    on_words = score_folds([p[words] for p in fold_probs], y_true[words], label_names, n_boot, seed)
    for key in ("accuracy", "ensemble_accuracy", "ensemble_correct"):
        scores[key] = on_words[key]
    scores["accuracy_on"] = "words"


def _clip_seconds(split: SpecSplit) -> float:
    settings = split.feature_settings
    return (split.features.shape[2] - 1) * settings.hop_length / settings.sample_rate


def _evaluate_models(
    paths: list[Path], split: SpecSplit, output_dir: Path, n_boot: int, seed: int, budget: float
) -> dict:
    from kwsops.ml.model import count_parameters, load_model, predict_proba

    fold_probs, metas, latency, parameters = [], [], 0.0, 0
    cache: dict[str, tuple[FeatureStore | torch.Tensor | RecomputedFeatures, bool]] = {}
    for path in paths:
        model, meta = load_model(path)
        columns = align_labels(meta["labels"], split.label_names, str(path))
        settings = json.dumps(meta["features"], sort_keys=True)
        if settings not in cache:
            cache[settings] = features_for(meta["features"], split, output_dir)
        features, _ = cache[settings]
        fold_probs.append(predict_proba(model, features)[:, columns].numpy())
        if not metas:
            latency, parameters = measure_latency(model, features), count_parameters(model)
        metas.append(meta)
    y_true = split.labels.numpy()
    scores = score_folds(fold_probs, y_true, split.label_names, n_boot, seed)
    _word_accuracy(scores, fold_probs, y_true, split.label_names, n_boot, seed)
    sources = split.sources or split.ids
    folder = Path(paths[0]).parent.parent
    spot = spotting_summary(fold_probs, y_true, split.label_names, _clip_seconds(split), folder,
                            budget)  # fmt: skip
    return {
        **scores,
        "spotting": spot,
        "per_speaker": breakdown.per_speaker(fold_probs, y_true, split.speakers),
        "misclassified": breakdown.misclassified(
            fold_probs, y_true, split.label_names, split.speakers, sources, split.ids
        ),
        "folds": len(paths),
        "params": flat_params(metas[0]),
        "parameters": int(parameters),
        "file_bytes": int(statistics.median(Path(p).stat().st_size for p in paths)),
        "latency_ms": round(latency, 4),
        "features_recomputed": any(r for _, r in cache.values()),
        "val_accuracy": [m.get("metrics", {}).get("val_acc") for m in metas],
        "fold_fallback": metas[0].get("metrics", {}).get("fold_fallback", ""),
        "trained_on": metas[0].get("trained_on"),
    }


def unseen_check(trained_on: dict | None, test: SpecSplit, train_sha: str) -> dict:
    """Whether a revision's test accuracy is on clips and voices it never trained on.

    ``trained_on`` is the model metadata's record of its train split (``training_clips``);
    ``train_sha`` the digest of the train split that held out ``test``. Returns ``{"status":
    "unseen" | "overlap" | "other split" | "unknown", "speakers": [...]}``: speakers of the test
    clips the revision trained on, when any.
    """
    if not trained_on:
        return {"status": "unknown", "speakers": []}
    if trained_on.get("ids_sha256") == train_sha:
        return {"status": "unseen", "speakers": []}
    test_speakers = {s for s in test.speakers if s}
    shared = sorted(test_speakers & set(trained_on.get("speakers") or []))
    if shared:
        return {"status": "overlap", "speakers": shared}
    if not all(test.speakers):  # a clip without a speaker may have been a training clip
        return {"status": "other split", "speakers": []}
    return {"status": "unseen", "speakers": []}


def unseen_note(name: str, check: dict, test_speakers: int) -> str | None:
    """The report's note for a revision whose test accuracy is not on unseen data, or None."""
    status = check["status"]
    if status == "overlap":
        shared = check["speakers"]
        listed = ", ".join(shared[:5]) + (", ..." if len(shared) > 5 else "")
        return (
            f"{name} was trained on {len(shared)} of the {test_speakers} test speakers "
            f"({listed}): its accuracy is not on unseen voices; retrain it on the current "
            "split to compare it fairly"
        )
    if status == "other split":
        return (
            f"{name} was trained on another split: test clips without a speaker may have "
            "been among its training clips"
        )
    if status == "unknown":
        return (
            f"{name}: its model files do not record what they were trained on (made before "
            "kwsops recorded it); its accuracy is on unseen voices only if it held out this split"
        )
    return None
