#!/bin/sh
# kwsops container entrypoint. The workspace is a mounted volume (or a git clone of one):
#   - made a workspace if it is not one yet;
#   - its data pulled with DVC when it has versioned data (remote from .dvc/config, or from
#     DVC_HOST / DVC_USER / DVC_PASSWORD);
#   - then `kwsops run` with the arguments given (`demo` first synthesises demo recordings).
# Reports stay in the workspace's reports/ folder, on the volume.
set -eu

workspace="${KWSOPS_WORKSPACE:-/workspace}"
mkdir -p "$workspace"
cd "$workspace"

if [ ! -d .dvc ] || [ ! -e .git ]; then
    kwsops init .
fi

if ls data/*.dvc >/dev/null 2>&1; then
    kwsops pull
fi

if [ "${1:-}" = "demo" ]; then
    shift
    kwsops demo-data --quiet
fi

exec kwsops run "$@"
