#!/usr/bin/env bash
# Set up a fresh machine: the CPU build of torch 2.13.0 first (any other torch request pulls multi-GB CUDA
# wheels), then this package in editable mode with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".[test]"
