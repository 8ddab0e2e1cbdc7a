"""Pure evaluation maths: bootstrap intervals, McNemar, per-class scores, confusion, ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import precision_recall_fscore_support

from kwsops.compare.assemble import differing_params, paired_against_best, rank
from kwsops.compare.evaluation import (
    EvaluationError,
    align_labels,
    class_scores,
    confusion_counts,
    features_for,
    flat_params,
    mcnemar,
    measure_latency,
    normalise_rows,
    resample_weights,
    score_folds,
    unseen_check,
    unseen_note,
)
from kwsops.compare.model import RevisionResult, from_json
from kwsops.config import FeatureSettings
from kwsops.ml.features import SpecSplit, training_clips


def test_resampling_is_seeded_and_draws_n_clips():
    weights = resample_weights(30, n_boot=50, seed=7)
    assert weights.shape == (50, 30) and (weights.sum(axis=1) == 30).all()
    assert np.array_equal(weights, resample_weights(30, n_boot=50, seed=7))
    assert not np.array_equal(weights, resample_weights(30, n_boot=50, seed=8))


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_clips():
    """The accuracy interval score_folds reports (the one the report shows)."""
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 80, 320):
        y_true = rng.integers(0, 3, n)
        correct = rng.random(n) < 0.8
        predicted = np.where(correct, y_true, (y_true + 1) % 3)
        probs = np.eye(3)[predicted]
        ci = score_folds([probs], y_true, ["a", "b", "c"], n_boot=1000, seed=1)["accuracy"]
        assert ci["low"] <= ci["mean"] <= ci["high"]
        assert ci["mean"] == pytest.approx(correct.mean())
        widths.append(ci["high"] - ci["low"])
    assert widths[0] > widths[1] > widths[2]
    every = score_folds([np.eye(2)[[0, 1] * 5]], np.array([0, 1] * 5), ["a", "b"])["accuracy"]
    assert (every["mean"], every["low"], every["high"]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 0, 1.0),
        (1, 6, 0.125),  # exact: 2 * (C(7,0) + C(7,1)) / 2**7
        (5, 5, 1.0),
        (0, 10, 2 / 2**10),
    ],
)
def test_mcnemar_exact_on_known_tables(b, c, expected):
    a_right = np.array([True] * b + [False] * c + [True] * 20)
    b_right = np.array([False] * b + [True] * c + [True] * 20)
    result = mcnemar(a_right, b_right)
    assert (result["b"], result["c"]) == (b, c)
    assert result["p_value"] == pytest.approx(expected)
    if b + c:
        assert result["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)


def test_mcnemar_chi_square_with_continuity_correction_for_many_discordant_clips():
    a_right = np.array([True] * 30 + [False] * 10)
    result = mcnemar(a_right, ~a_right)
    statistic = (abs(30 - 10) - 1) ** 2 / 40  # 9.025
    assert result["method"].startswith("McNemar chi")
    assert result["p_value"] == pytest.approx(stats.chi2.sf(statistic, 1))
    assert result["p_value"] == pytest.approx(0.00266, abs=1e-5)


def test_class_scores_match_sklearn():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
    y_pred[:5] = 0  # and class 3 is never predicted below
    y_pred[y_pred == 3] = 2
    precision, recall, f1 = class_scores(np.ones((1, 60)), y_true, y_pred, 4)
    expected = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for ours, theirs in zip((precision, recall, f1), expected[:3], strict=True):
        assert np.allclose(ours[0], theirs)


def test_confusion_rows_are_normalised():
    counts = confusion_counts(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 1, 0]), 4)
    assert counts.tolist() == [[1, 2, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    rows = normalise_rows(counts)
    assert np.allclose(rows[:3].sum(axis=1), 1.0)
    assert rows[3].tolist() == [0, 0, 0, 0]  # a label without test clips stays empty
    assert rows[0].tolist() == pytest.approx([1 / 3, 2 / 3, 0, 0])


def fake_probs(y: np.ndarray, wrong: list[int], k: int = 3) -> np.ndarray:
    """Softmaxes: 0.8 on the true label, or a hesitant 0.5 on the next one for ``wrong``."""
    pred, sure = y.copy(), np.full(len(y), 0.8)
    pred[wrong], sure[wrong] = (pred[wrong] + 1) % k, 0.5
    probs = np.repeat(((1 - sure) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(len(y)), pred] = sure
    return probs


def test_score_folds_means_over_folds_and_scores_the_ensemble():
    y = np.array([0, 1, 2] * 10)
    folds = [fake_probs(y, [0, 1, 2]), fake_probs(y, [3, 4, 5, 6, 7, 8])]
    scores = score_folds(folds, y, ["a", "b", "c"], n_boot=500)
    assert scores["accuracy"]["per_fold"] == pytest.approx([0.9, 0.8])
    assert scores["accuracy"]["mean"] == pytest.approx(0.85)
    for name in ("accuracy", "macro_f1", "ensemble_accuracy"):
        assert scores[name]["low"] <= scores[name]["mean"] <= scores[name]["high"]
    # ensemble: each clip is missed by one fold at most, hesitantly: the average gets it right
    assert scores["ensemble_accuracy"]["mean"] == 1.0
    assert sum(scores["ensemble_correct"]) == 30
    assert [c["support"] for c in scores["per_class"]] == [10, 10, 10]
    # label a: clips 0, 3, ..., 27; fold 1 misses clip 0, fold 2 misses clips 3 and 6
    assert scores["per_class"][0]["recall"] == pytest.approx((0.9 + 0.8) / 2)
    assert np.allclose(np.sum(scores["confusion"], axis=1), 1.0)
    with pytest.raises(EvaluationError):
        score_folds([], y, ["a", "b", "c"])


def test_rank_pairs_and_differing_params():
    def result(spec: str, acc: float, ens: float, lr: float, correct: list[int]):
        interval = {"mean": acc, "low": acc, "high": acc}
        return from_json(RevisionResult, {
            "spec": spec, "accuracy": interval, "ensemble_accuracy": {**interval, "mean": ens},
            "macro_f1": interval, "params": {"lr": lr, "batch_size": 32, "seed": 42},
            "ensemble_correct": correct, "per_class": [], "confusion": [], "folds": 1,
            "parameters": 1, "file_bytes": 1, "latency_ms": 1.0,
        })  # fmt: skip

    results = [
        result("a", 0.7, 0.7, 0.01, [1, 0, 0, 1]),
        result("b", 0.9, 0.9, 0.001, [1, 1, 1, 1]),
        result("c", 0.9, 0.95, 0.001, [1, 1, 1, 0]),
    ]
    results[2].params["extra"] = 1
    ranked = rank(results)
    assert [r.spec for r in ranked] == ["c", "b", "a"]
    assert differing_params(ranked) == ["extra", "lr"]
    paired_against_best(ranked)
    assert ranked[0].paired is None
    assert ranked[1].paired is not None and ranked[2].paired is not None
    assert ranked[1].paired.against == "c" and ranked[1].paired.c == 1
    assert (ranked[2].paired.b, ranked[2].paired.c) == (2, 1)


def test_labels_align_by_name_or_refuse():
    assert align_labels(["b", "a", "c"], ["a", "b", "c"], "m") == [1, 0, 2]
    with pytest.raises(EvaluationError, match="trained on labels"):
        align_labels(["a", "b"], ["a", "b", "c"], "m")


def test_flat_params_flattens_training_arch_and_features():
    meta = {"params": {"batch_size": 16, "augment": {"mixup": False, "snr": [3, 25]},
                       "extra": {}}, "arch": {"name": "tcresnet"}, "features": {"n_mels": 40}}  # fmt: skip
    assert flat_params(meta) == {
        "augment.mixup": False, "augment.snr": "[3, 25]", "batch_size": 16,
        "arch.name": "tcresnet", "features.n_mels": 40,
    }  # fmt: skip


def test_features_are_recomputed_from_the_wavs_for_other_settings(tmp_path):
    import soundfile as sf

    clip = (0.3 * np.sin(np.arange(16_000) * 0.2)).astype(np.float32)
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "x.wav", clip, 16_000, subtype="PCM_16")
    packed = FeatureSettings()
    split = SpecSplit(torch.zeros(1, packed.n_mels, 101), torch.zeros(1, dtype=torch.long),
                      ["a/x.wav"], ["s"], ["a"], packed)  # fmt: skip
    same, recomputed = features_for(packed.as_dict(), split, tmp_path)
    assert same is split.features and not recomputed
    other = FeatureSettings(n_mels=24, sample_rate=8_000, f_max=3_800.0)
    feats, recomputed = features_for(other.as_dict(), split, tmp_path)
    assert recomputed and feats.shape == (1, 24, 8_000 // other.hop_length + 1)
    from kwsops.audio.clip import resample
    from kwsops.ml.features import log_mel

    stored, _ = sf.read(tmp_path / "a" / "x.wav", dtype="float32")
    direct = log_mel(torch.from_numpy(resample(stored, 16_000, 8_000)), other)  # read per batch
    for index in (slice(0, 1), torch.tensor([0]), np.array([0])):
        torch.testing.assert_close(feats[index], direct, rtol=0, atol=1e-3)
    assert feats[0].shape == feats.shape[1:]
    with pytest.raises(EvaluationError, match="cannot be read"):
        features_for(other.as_dict(), split, tmp_path / "missing")


def test_latency_is_positive_and_restores_threads():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(40 * 20, 3))
    threads = torch.get_num_threads()
    ms = measure_latency(model, torch.zeros(16, 40, 20), batch=4, repeats=3)
    assert ms > 0 and torch.get_num_threads() == threads


def test_unseen_check_names_test_speakers_a_revision_trained_on():
    def split(ids: list[str], speakers: list[str]) -> SpecSplit:
        n = len(ids)
        return SpecSplit(torch.zeros(n, 2, 3), torch.zeros(n, dtype=torch.long), ids, speakers,
                         ["a"], FeatureSettings())  # fmt: skip

    train_ids, train_speakers = ["x1", "x2", "y1", "u1"], ["x", "x", "y", ""]
    current = training_clips(train_ids, train_speakers)
    assert current == {"clips": 4, "ids_sha256": current["ids_sha256"], "speakers": ["x", "y"]}
    assert training_clips(list(reversed(train_ids)), train_speakers) == current  # order-free
    test = split(["z1", "z2", "w1"], ["z", "z", "w"])
    sha = current["ids_sha256"]
    assert unseen_check(current, test, sha) == {"status": "unseen", "speakers": []}
    assert unseen_check(None, test, sha)["status"] == "unknown"
    # trained on another split that held in test speaker z (and w): named, sorted
    other = training_clips(["x1", "z1", "w1"], ["x", "z", "w"])
    check = unseen_check(other, test, sha)
    assert check == {"status": "overlap", "speakers": ["w", "z"]}
    note = unseen_note("workspace:batch_32", check, 2)
    assert "trained on 2 of the 2 test speakers (w, z)" in note and "not on unseen" in note
    # another split, speakers disjoint: still unseen voices, unless a test clip has no speaker
    disjoint = training_clips(["x1", "q1"], ["x", "q"])
    assert unseen_check(disjoint, test, sha)["status"] == "unseen"
    anonymous = split(["z1", "n1"], ["z", ""])
    assert unseen_check(disjoint, anonymous, sha)["status"] == "other split"
    assert unseen_note("r", {"status": "unseen", "speakers": []}, 2) is None


def test_per_speaker_accuracy_worst_first_and_the_ensembles_mistakes():
    from kwsops.compare.breakdown import misclassified, per_speaker

    y = np.array([0, 1, 2, 0, 1, 2])
    speakers = ["amy", "amy", "amy", "bo", "bo", ""]
    one = np.eye(3)[[0, 1, 2, 0, 2, 1]] * 0.9 + 0.1 / 3  # bo's clip 4 and the unnamed clip 5
    two = np.eye(3)[[0, 1, 2, 1, 1, 1]] * 0.9 + 0.1 / 3  # bo's clip 3, the unnamed clip 5
    rows = per_speaker([one, two], y, speakers)
    assert [r["speaker"] for r in rows] == ["(unknown)", "bo", "amy"]
    assert rows[0] == {
        "speaker": "(unknown)",
        "clips": 1,
        "accuracy": 0.0,
        "ensemble_accuracy": 0.0,
    }
    assert rows[1]["accuracy"] == pytest.approx(0.5) and rows[2]["accuracy"] == 1.0
    assert per_speaker([one], y, [""] * 6) == []  # no speaker named: nothing to break down
    sources = [f"in/{n}.wav" for n in range(6)]
    wrong = misclassified([one, two], y, ["a", "b", "c"], speakers, sources, sources)
    assert [w["source"] for w in wrong] == ["in/5.wav"]  # the ensemble settles clips 3 and 4
    assert (wrong[0]["true"], wrong[0]["predicted"]) == ("c", "b")
    assert wrong[0]["probability"] == pytest.approx(0.9 + 0.1 / 3, abs=1e-4)
