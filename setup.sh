#!/usr/bin/env bash
# Make .venv with movierec, its test tools and the documentation's tools. PyTorch is pinned
# to the CPU build this machine has on disk; on a GPU machine set TORCH_SPEC (e.g.
# TORCH_SPEC=torch) to get CUDA.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/pip install --quiet -e '.[dev,tune,docs]'
