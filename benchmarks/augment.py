"""Cost of the training augmentation: what one stacked step augments (every fold's batch, each
with its own Augmenter), per batch size, on one torch thread.

    python benchmarks/augment.py --workspace DIR      # a workspace with spectrograms
    PYTHONPATH=/path/to/older/checkout python benchmarks/augment.py --workspace DIR

Prints, per batch size, the milliseconds to augment ``--folds`` batches (the median of
``--rounds`` rounds, after one untimed round) and per clip. Run it against another checkout
(the second line) to compare two versions side by side on one machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from kwsops.ml.augment import Augmenter, AugmentSettings, noise_bank
from kwsops.ml.features import load_split
from kwsops.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    if not (ws.spec_dir / "train.safetensors").is_file():
        sys.exit(f"{ws.spec_dir}: no spectrograms; run `kwsops run --target "
                 "VersionSpectrograms` there first")  # fmt: skip
    torch.set_num_threads(1)
    data = load_split(ws.spec_dir, "train")
    frames = data.features.shape[2]
    bank = noise_bank(data.feature_settings, frames, data.features[: min(200, len(data.labels))])
    augmenters = [
        Augmenter(AugmentSettings(), len(data.label_names), data.feature_settings, bank, seed=k)
        for k in range(args.folds)
    ]
    print(f"{args.folds} folds, {frames} frames, torch {torch.__version__}, one thread")
    for batch in args.batch_sizes:
        index = torch.arange(min(batch, len(data.labels)))
        x, y = data.features[index], data.labels[index]
        times = []
        for round_ in range(args.rounds + 1):
            started = time.perf_counter()
            for augment in augmenters:
                augment(x, y)
            if round_:  # the first round warms up
                times.append(time.perf_counter() - started)
        step = statistics.median(times) * 1000
        print(
            f"bs{batch}: {step:6.1f} ms per step of {args.folds} folds, "
            f"{step / args.folds / len(index) * 1000:5.0f} us per clip"
        )


if __name__ == "__main__":
    main()
