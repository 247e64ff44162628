#!/usr/bin/env bash
# GPU correctness check and timing at ML-20M shape (see bench/gpu.py for what and why):
#   bench/gpu.sh [--size full|small|tiny]   on a CUDA machine; exit 1 if cuda and cpu disagree
#   bench/gpu.sh --device cpu               the same flow on CPU at a tiny size, to test the script
# Exit 2 when no CUDA GPU is visible and --device cpu was not given.
set -uo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python
# Nothing goes into the repo: caches and any data live in a temp dir removed on exit.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export MOVIEREC_CACHE="$tmp" MPLCONFIGDIR="$tmp" PYTHONDONTWRITEBYTECODE=1
# src/ first, so a Python without movierec installed (a bare GPU box) still finds it.
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$python" bench/gpu.py "$@"
