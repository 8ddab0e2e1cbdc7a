"""Segment, then classify: what a detector that cuts the stream into utterances first would score
on benchmarks/streams.py's recording, against the sliding window's figures.

    .venv/bin/python benchmarks/segments.py --workspace WS [--minutes 60] [--keep DIR]

Each utterance the energy detector finds (frames over a floor that follows the background,
short gaps bridged) and no longer than ``--max-seconds`` is made into a clip by the Preprocess
chain (``kwsops.audio.clip.shape_clip``: trimmed, peak-normalised, centred over the pad noise,
as ``kwsops predict`` sees a file) and scored once by the revision's scorer; a longer one is
speech that is not a lone command word. Misses and false alarms per hour at every threshold of
a grid, exact (each threshold decides anew), matched as streams.py matches detections.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streams import poisson_upper, recording_of, recording_options, score  # noqa: E402

from kwsops.audio.clip import DEFAULT_SETTINGS, AudioError, shape_clip  # noqa: E402
from kwsops.compare.predict import fetched_models, revision_threshold  # noqa: E402
from kwsops.compare.scorer import load_scorer  # noqa: E402
from kwsops.workspace import Workspace  # noqa: E402

RATE = 16_000
HOP = 160  # 10 ms frames


def utterances(audio: np.ndarray, margin_db: float, gap: float, floor_seconds: float = 3.0
               ) -> list[tuple[int, int]]:  # fmt: skip
    """(start, end) samples of each run of frames standing ``margin_db`` over the background
    (the lowest 50 ms level in the ``floor_seconds`` around), gaps under ``gap`` s bridged."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    frames = len(audio) // HOP
    power = np.square(audio[: frames * HOP].astype(np.float64)).reshape(frames, HOP).mean(1)
    db = 10 * np.log10(np.maximum(uniform_filter1d(power, 3), 1e-12))
    floor = minimum_filter1d(uniform_filter1d(db, 10), round(floor_seconds * RATE / HOP))
    active = (db > floor + margin_db) & (db > -65)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] < gap * RATE / HOP:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(s * HOP, e * HOP) for s, e in merged if e - s >= 8]  # >= 80 ms


def score_clips(scorer, clips: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """The scorer's probabilities of equal-length clips, ``batch`` at a time."""
    return np.concatenate([scorer.score(scorer.log_mel(np.stack(clips[i : i + batch])))
                           for i in range(0, len(clips), batch)])  # fmt: skip


def main() -> None:
    parser = recording_options(__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=1.5)
    parser.add_argument("--margin-db", type=float, default=12.0)
    parser.add_argument("--gap", type=float, default=0.2)
    parser.add_argument("--floor-seconds", type=float, default=10.0)
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 140)
    with tempfile.TemporaryDirectory(prefix="kwsops-segments-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        recording, words = recording_of(folder, args.minutes, args.seed)
        audio, rate = sf.read(recording, dtype="float32")
    hours = len(audio) / rate / 3600
    ws = Workspace(args.workspace)
    with fetched_models(ws, args.revision) as (spec, paths):
        point = revision_threshold(paths)
        scorer = load_scorer(ws.cache_dir, paths)
    segments = utterances(audio, args.margin_db, args.gap, args.floor_seconds)
    short = [(s, e) for s, e in segments if (e - s) / RATE <= args.max_seconds]
    pad = round(0.1 * RATE)
    clips, spans = [], []
    for start, end in short:
        piece = audio[max(0, start - pad) : end + pad]
        try:
            pcm, _ = shape_clip(piece, RATE, DEFAULT_SETTINGS)
        except AudioError:
            continue
        clips.append(pcm.astype(np.float32) / 32768.0)
        spans.append((start / RATE, end / RATE))
    probs = score_clips(scorer, clips)
    word_cols = [i for i, x in enumerate(scorer.labels) if not x.startswith("_")]
    # the best a segmenter could do: each word cut at its true span, the same chain
    truth = [shape_clip(audio[max(0, round(w.start * RATE) - pad) : round(w.end * RATE) + pad],
                        RATE, DEFAULT_SETTINGS)[0].astype(np.float32) / 32768.0 for w in words]  # fmt: skip
    oracle = score_clips(scorer, truth)
    p_true = oracle[np.arange(len(words)), [scorer.labels.index(w.label) for w in words]]
    console.print("words cut at their true spans: p(word) quartiles "
                  f"{np.round(np.quantile(p_true, [0.25, 0.5, 0.75]), 2).tolist()}, "
                  f"{np.mean(p_true >= 0.9):.0%} at >= 0.9, {np.mean(p_true >= point):.0%} at the "
                  f"operating point; taken for another class: "
                  f"{np.mean(oracle.argmax(1) != [scorer.labels.index(w.label) for w in words]):.0%}")  # fmt: skip
    best = probs[:, word_cols].argmax(1)
    best_p = probs[:, word_cols].max(1)
    # the utterances that hold a word: how many there are, and how many the cut kept whole
    covered = sum(any(s <= w.start + 0.05 and e >= w.end - 0.05 for s, e in spans) for w in words)
    console.print(f"{spec}: {hours * 60:.0f} min, {len(words)} words; {len(segments)} "
                  f"utterances, {len(short)} of <= {args.max_seconds} s, {len(clips)} scored; "
                  f"{covered} words whole in one of them; operating point {point:.3f}")  # fmt: skip
    grid = sorted({*np.round(np.linspace(0.3, 0.95, 14), 3), *np.round(1 - np.geomspace(0.05, 0.001, 20), 4), round(point, 4)})  # fmt: skip
    table = Table(title="segment, then classify")
    for column in ("threshold", "miss rate", "false alarms / h (95 % upper)"):
        table.add_column(column, justify="right")
    rows = []
    for t in grid:
        dets = [{"start": s, "end": e, "label": scorer.labels[word_cols[b]], "probability": float(p)}
                for (s, e), b, p in zip(spans, best, best_p, strict=True) if p >= t]  # fmt: skip
        miss, per_hour, count = score(dets, words, hours)
        rows.append((t, miss, per_hour, count))
        table.add_row(
            f"{t:.4f}", f"{miss:.1%}", f"{per_hour:.1f} ({poisson_upper(count, hours):.1f})"
        )
    console.print(table)
    for budget in (1.0, 3.0, 5.0):
        within = [r for r in rows if r[2] <= budget]
        if within:
            r = min(within, key=lambda r: (r[1], r[0]))
            console.print(
                f"miss at <= {budget:g} / h: {r[1]:.1%} (threshold {r[0]:.4f}, {r[2]:.1f} / h)"
            )


if __name__ == "__main__":
    main()
