"""Held-out accuracy of the training precisions, over several seeds: the folds of each batch
size trained stacked (in this process, no pipeline around it) in float32 and in bfloat16, and
scored on the test split by the code Validate runs.

    python benchmarks/precision.py --workspace DIR                  # seeds 42 1 2, bs 16 32 64
    python benchmarks/precision.py --workspace DIR --seeds 42 --batch-sizes 32

The test split of the demo data is 108 clips (one clip is 0.009 of accuracy), so a single
seed cannot tell a precision's effect from chance: the seeds' means are compared. Printed per
seed, batch size and precision: the wall time, the mean accuracy of the fold models and of
their ensemble, and the mean best validation accuracy of the folds; then the means over the
seeds and the bfloat16 - float32 differences. ``DIR`` is a workspace whose spectrograms are
made (``kwsops run --target VersionSpectrograms``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kwsops.compare.evaluation import evaluate_models
from kwsops.config import TrainSettings
from kwsops.ml.features import load_split
from kwsops.ml.stacked import train_folds
from kwsops.workspace import Workspace

PRECISIONS = ("float32", "bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    if not (ws.spec_dir / "train.safetensors").is_file():
        sys.exit(f"{ws.spec_dir}: no spectrograms; run `kwsops run --target "
                 "VersionSpectrograms` there first")  # fmt: skip
    test = load_split(ws.spec_dir, "test")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kwsops-precision-") as tmp:
        for seed in args.seeds:
            for batch in args.batch_sizes:
                for precision in PRECISIONS:
                    settings = TrainSettings(batch_size=batch, epochs=args.epochs,
                                             folds=args.folds, seed=seed, precision=precision)  # fmt: skip
                    out = Path(tmp) / f"{seed}-{batch}-{precision}"
                    started = time.perf_counter()
                    results = train_folds(ws.spec_dir, {k: out / f"fold_{k}" for k in
                                                        range(args.folds)}, settings)  # fmt: skip
                    wall = time.perf_counter() - started
                    paths = sorted(out.glob("fold_*/model.safetensors"))
                    scores = evaluate_models(paths, test, ws.output_dir, n_boot=10)
                    row = {
                        "seed": seed, "batch_size": batch, "precision": precision,
                        "wall_s": wall, "folds": scores["accuracy"]["mean"],
                        "ensemble": scores["ensemble_accuracy"]["mean"],
                        "val": statistics.mean(r.val_acc for r in results),
                    }  # fmt: skip
                    rows.append(row)
                    print(f"seed {seed:>3} bs{batch:<3} {precision:<8} {wall:6.1f} s   held-out "
                          f"folds {row['folds']:.4f} ensemble {row['ensemble']:.4f}   "
                          f"val {row['val']:.4f}", flush=True)  # fmt: skip
    print(f"means over seeds {args.seeds} (held-out, {len(test.labels)} test clips):")
    for batch in args.batch_sizes:
        means = {}
        for precision in PRECISIONS:
            mine = [r for r in rows if r["batch_size"] == batch and r["precision"] == precision]
            means[precision] = {k: statistics.mean(r[k] for r in mine)
                                for k in ("folds", "ensemble", "val", "wall_s")}  # fmt: skip
        f32, b16 = means["float32"], means["bfloat16"]
        print(f"  bs{batch}: folds {f32['folds']:.4f} -> {b16['folds']:.4f} "
              f"({b16['folds'] - f32['folds']:+.4f}), ensemble {f32['ensemble']:.4f} -> "
              f"{b16['ensemble']:.4f} ({b16['ensemble'] - f32['ensemble']:+.4f}), val "
              f"{f32['val']:.4f} -> {b16['val']:.4f}; wall {f32['wall_s']:.1f} -> "
              f"{b16['wall_s']:.1f} s")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
