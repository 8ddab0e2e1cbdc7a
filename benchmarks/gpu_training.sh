#!/bin/sh
# The 15 default folds (batch sizes 16/32/64 x 5 folds, 30 epochs) trained stacked on a CUDA
# GPU: prints the wall time per batch size and in all (the target: 20 s or less).
#
#     sh benchmarks/gpu_training.sh                  # from the repository, kwsops importable
#     sh benchmarks/gpu_training.sh --epochs 5       # shorter; any benchmarks/training.py flag
#
# Needs a CUDA build of torch and one GPU. Making the demo spectrograms takes a minute or two
# on the CPU first (not timed); the whole script stays under 5 minutes.
set -eu
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python -m kwsops.cli init "$TMP/ws" >/dev/null
python -m kwsops.cli -C "$TMP/ws" demo-data --quiet
python -m kwsops.cli -C "$TMP/ws" run --target VersionSpectrograms --quiet
timeout 240 python benchmarks/training.py --workspace "$TMP/ws" --device cuda "$@"
