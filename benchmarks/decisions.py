"""Compare `kwsops detect`'s decision rules on one recording: misses at <= 1 and <= 5 false
alarms an hour and at the revision's operating point, for each rule.

    .venv/bin/python benchmarks/decisions.py --workspace WS [--minutes 60] [--seed 2207]

The recording is benchmarks/streams.py's (the same ``--minutes`` and ``--seed`` build the same
file; ``--keep`` reuses it). Its windows are scored once with the detector's own scorer and
features (kept beside the recording as ``.windows-<key>.npz``); each rule then replays those
scores through :class:`kwsops.compare.detect.Events` at every threshold of a grid, exactly as
detect would decide at that threshold (no sweep of a low-threshold run). Rules: the smoothing
length (windows averaged), k of n (the word must win that many of the averaged windows alone),
and a refractory gap (seconds after a word in which nothing fires).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streams import poisson_upper, recording_of, recording_options, score  # noqa: E402

from kwsops.audio.stream import file_blocks  # noqa: E402
from kwsops.compare.detect import Detector, Events  # noqa: E402
from kwsops.compare.predict import fetched_models, revision_threshold  # noqa: E402
from kwsops.compare.scorer import load_scorer, models_key  # noqa: E402
from kwsops.workspace import Workspace  # noqa: E402

MISS_BUDGETS = (0.5, 0.7, 0.9)
# (name, Events options): the detector's rule first
RULES = (
    ("smooth 2 (detect's)", {}),
    ("smooth 1", {"smooth": 1}),
    ("smooth 3", {"smooth": 3}),
    ("smooth 4", {"smooth": 4}),
    ("smooth 2, 2 of 2", {"smooth": 2, "votes": 2}),
    ("smooth 3, 2 of 3", {"smooth": 3, "votes": 2}),
    ("smooth 3, 3 of 3", {"smooth": 3, "votes": 3}),
    ("smooth 4, 3 of 4", {"smooth": 4, "votes": 3}),
    ("smooth 2, refractory 1 s", {"refractory": 1.0}),
    ("smooth 2, refractory 3 s", {"refractory": 3.0}),
)


class Tape(Events):
    """Events that also keep every window's scores and energy."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tape: list[tuple[int, np.ndarray, np.ndarray]] = []

    def push(self, index, probs, energy):
        self.tape.append((index, probs, energy))
        return super().push(index, probs, energy)


def window_scores(ws: Workspace, revision: str | None, recording: Path) -> dict:
    """Every window's probabilities and frame energy, the labels and the operating point."""
    with fetched_models(ws, revision) as (spec, paths):
        cache = recording.with_name(f"{recording.stem}.windows-{models_key(paths)[:12]}.npz")
        threshold = revision_threshold(paths)
        if cache.is_file():
            data = np.load(cache)
            return {"spec": spec, "labels": json.loads(str(data["labels"])), "probs": data["probs"],
                    "energy": data["energy"], "threshold": threshold,
                    "hop": float(data["hop"]), "window": float(data["window"])}  # fmt: skip
        scorer = load_scorer(ws.cache_dir, paths)
    detector = Detector(scorer, threshold=1.1)  # never fires: only the tape matters
    detector.events = tape = Tape(scorer.labels, 1.1, detector.events.hop, detector.events.window)
    for block in file_blocks(recording, scorer.settings.sample_rate):
        detector.feed(block)
    detector.finish()
    probs = np.stack([p for _, p, _ in tape.tape]).astype(np.float32)
    energy = np.stack([e for _, _, e in tape.tape]).astype(np.float32)
    np.savez(cache, labels=json.dumps(scorer.labels), probs=probs, energy=energy,
             hop=tape.hop, window=tape.window)  # fmt: skip
    return {"spec": spec, "labels": scorer.labels, "probs": probs, "energy": energy,
            "threshold": threshold, "hop": tape.hop, "window": tape.window}  # fmt: skip


def replay(data: dict, threshold: float, options: dict) -> list[dict]:
    events = Events(data["labels"], threshold, data["hop"], data["window"], **options)
    found = []
    probs, energy = data["probs"], data["energy"]
    for index in range(len(probs)):
        found += events.push(index, probs[index], energy[index])
    found += events.flush()
    return [asdict(d) for d in found]


def main() -> None:
    args = recording_options(__doc__.splitlines()[0]).parse_args()
    console = Console(width=None if sys.stdout.isatty() else 120)
    with tempfile.TemporaryDirectory(prefix="kwsops-decisions-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        with console.status("building the recording (or reading the kept one)"):
            recording, words = recording_of(folder, args.minutes, args.seed)
        hours = sf.info(recording).duration / 3600
        with console.status("scoring every window"):
            data = window_scores(Workspace(args.workspace), args.revision, recording)
    point = data["threshold"]
    words_best = data["probs"][
        :, [i for i, x in enumerate(data["labels"]) if not x.startswith("_")]
    ]
    grid = np.unique(np.round(np.concatenate([
        np.quantile(words_best.max(axis=1), np.linspace(0.9, 1.0, 30)),
        np.linspace(0.2, 0.95, 16), 1 - np.geomspace(0.05, 0.002, 16), [point],
    ]), 4))  # fmt: skip
    table = Table(title=f"{data['spec']}: {hours * 60:.0f} min, {len(words)} words, operating "
                        f"point {point:.3f}")  # fmt: skip
    for column in ("rule", "miss <= 1/h", "threshold", "miss <= 5/h", "threshold",
                   "miss at op. point", "false alarms/h (95% upper)",
                   *(f"false alarms/h, miss <= {m:.0%}" for m in MISS_BUDGETS)):  # fmt: skip
        table.add_column(column, justify="left" if column == "rule" else "right")
    figures = []
    for name, options in RULES:
        with console.status(f"replaying {name}"):
            rows = [(t, *score(replay(data, float(t), options), words, hours)) for t in grid]
        cells, row = [name], {"rule": name, "options": options}
        for budget in (1.0, 5.0):
            within = [r for r in rows if r[2] <= budget]
            best = min(within, key=lambda r: (r[1], r[0])) if within else None
            cells += [f"{best[1]:.1%}", f"{best[0]:.3f}"] if best else ["-", "-"]
            row[f"miss_at_{budget:g}"] = best[1] if best else None
            row[f"threshold_at_{budget:g}"] = float(best[0]) if best else None
        at_point = next(r for r in rows if r[0] == round(point, 4))
        cells += [
            f"{at_point[1]:.1%}",
            f"{at_point[2]:.1f} ({poisson_upper(at_point[3], hours):.1f})",
        ]
        row.update(miss_at_point=at_point[1], false_alarms_per_hour_at_point=at_point[2])
        for budget in MISS_BUDGETS:  # the false alarms each rule costs for as many words found
            within = [r for r in rows if r[1] <= budget]
            best = min(within, key=lambda r: r[2]) if within else None
            cells.append(f"{best[2]:.0f}" if best else "-")
            row[f"false_alarms_per_hour_at_miss_{budget:g}"] = best[2] if best else None
        table.add_row(*cells)
        figures.append(row)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"minutes": hours * 60, "words": len(words),
                                         "threshold": point, "rules": figures}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
