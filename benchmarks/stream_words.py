"""Why words in streams score low: each word of benchmarks/streams.py's recording scored alone
and in the stream, and the negatives that score highest.

    .venv/bin/python benchmarks/stream_words.py --models WS/data/models/batch_32 [--minutes 20]

The recording is built as benchmarks/streams.py builds it (same seed, same audio). For every
command word, the revision's fold ensemble scores its own label on one window of the model's
length in four conditions: the word's audio alone through the Preprocess chain (a clean clip,
as `kwsops predict` sees it), the same centred over the stream's background noise at its SNR,
the stream's own window with the word centred (its noise and the sentences around it), and the
best of the stream windows (every 0.2 s, as `kwsops detect` slides) that hold the whole word.
Then the medians by word and by eSpeak voice variant, and the windows holding no word that score
a word highest, with what is said in them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streams  # noqa: E402

from kwsops.audio.clip import shape_clip  # noqa: E402
from kwsops.compare.detect import HOP_SECONDS, window_features  # noqa: E402
from kwsops.compare.scorer import Scorer, load_scorer  # noqa: E402
from kwsops.keywords import is_word  # noqa: E402

RATE = streams.RATE


def score_windows(scorer: Scorer, audio: np.ndarray, hop: int) -> np.ndarray:
    """``[windows, classes]`` for windows every ``hop`` samples, as detect scores them."""
    window, count = scorer.window, (len(audio) - scorer.window) // hop + 1
    out, samples = [], audio.astype(np.float32)
    for first in range(0, count, 256):
        n = min(256, count - first)
        chunk = samples[first * hop : first * hop + (n - 1) * hop + window]
        features = window_features(chunk, n, window, hop, scorer.settings, scorer.log_mel)
        out.append(scorer.score(features))
    return np.concatenate(out)


def clip_scores(scorer: Scorer, clips: list[np.ndarray], columns: np.ndarray) -> np.ndarray:
    features = scorer.log_mel(np.stack([c.astype(np.float32) for c in clips]))
    return scorer.score(features)[np.arange(len(clips)), columns]


def summary(name: str, scores: np.ndarray) -> str:
    return (f"{name:34s} median {np.median(scores):.3f}   under 0.5: {np.mean(scores < 0.5):4.0%}"
            f"   under 0.9: {np.mean(scores < 0.9):4.0%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True,
                        help="a batch size's folder of fold models (data/models/batch_32)")  # fmt: skip
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=11, help="a dev stream, not the benchmark's")
    parser.add_argument("--top", type=int, default=15, help="negative windows to list")
    args = parser.parse_args()
    models = sorted(args.models.glob("fold_*/model.safetensors"))
    if not models:
        sys.exit(f"{args.models}: no fold_*/model.safetensors; give a batch size's folder")
    ensemble = load_scorer(Path(tempfile.gettempdir()) / "kwsops-stream-words", models)
    labels, window = ensemble.labels, ensemble.window
    said: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "stream.flac"
        streams.build_recording(path, args.minutes, args.seed, said)
        audio, _ = sf.read(path, dtype="float32")
    said = [s for s in said if s["end"] * RATE <= len(audio)]
    words = [s for s in said if s["kind"] == "word"]
    columns = np.array([labels.index(w["text"]) for w in words])
    rng = np.random.default_rng(0)
    clean, noisy, centred = [], [], []
    for w in words:
        pcm, _ = shape_clip(w["audio"].astype(np.float32), RATE)  # the Preprocess chain
        clean.append(pcm.astype(np.float32) / 32768)
        offset = (window - len(w["audio"])) // 2
        level = np.sqrt(np.mean(w["audio"] ** 2)) * 10 ** (-w["snr_db"] / 20)
        over = streams._noise(w["noise"], window, rng) * level
        over[offset : offset + len(w["audio"])] += w["audio"]
        noisy.append(over)
        start = min(max(0, round(w["start"] * RATE) - offset), len(audio) - window)
        centred.append(audio[start : start + window])
    hop = round(HOP_SECONDS * RATE)
    probs = score_windows(ensemble, audio, hop)
    starts = np.arange(len(probs)) * hop / RATE
    span = window / RATE
    best = np.array([probs[(starts <= w["start"]) & (starts + span >= w["end"]), c].max(initial=0)
                     for w, c in zip(words, columns, strict=True)])  # fmt: skip
    results = {"clean clip (as predict sees it)": clip_scores(ensemble, clean, columns),
               "over the stream's noise": clip_scores(ensemble, noisy, columns),
               "stream window, word centred": clip_scores(ensemble, centred, columns),
               "best stream window holding it": best}  # fmt: skip
    print(
        f"{len(words)} words in {len(audio) / RATE / 60:.0f} min (seed {args.seed}), "
        f"{args.models}: the word's own probability"
    )
    for name, scores in results.items():
        print(summary(name, scores))
    clean_scores, stream_scores = results["clean clip (as predict sees it)"], best
    for label in sorted({w["text"] for w in words}):
        mine = [i for i, w in enumerate(words) if w["text"] == label]
        print(f"  {label:8s} {len(mine):3d} words: clean {np.median(clean_scores[mine]):.2f}, "
              f"in the stream {np.median(stream_scores[mine]):.2f}")  # fmt: skip
    by_variant: dict[str, list[float]] = {}
    for w, s in zip(words, clean_scores, strict=True):
        by_variant.setdefault(w["voice"].split("+")[-1], []).append(float(s))
    print("  clean, by voice variant: " + ", ".join(
        f"{v} {np.median(s):.2f} ({len(s)})"
        for v, s in sorted(by_variant.items(), key=lambda kv: np.median(kv[1]))))  # fmt: skip
    word_columns = [i for i, name in enumerate(labels) if is_word(name)]
    near_word = np.zeros(len(probs), dtype=bool)
    for w in words:
        near_word |= (starts < w["end"]) & (starts + span > w["start"])
    top = np.where(near_word, -1.0, probs[:, word_columns].max(axis=1))
    print(f"windows holding no word: {int((~near_word).sum())}; scoring a word >= 0.5: "
          f"{int((top >= 0.5).sum())}, >= 0.9: {int((top >= 0.9).sum())}")  # fmt: skip
    for index in np.argsort(-top)[: args.top]:
        label = labels[word_columns[int(np.argmax(probs[index, word_columns]))]]
        inside = [s["text"] for s in said
                  if s["start"] < starts[index] + span and s["end"] > starts[index]]  # fmt: skip
        print(f"  {top[index]:.3f} {label:6s} at {starts[index]:7.1f} s: {' | '.join(inside)}")


if __name__ == "__main__":
    main()
