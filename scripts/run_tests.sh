#!/usr/bin/env bash
# Install the package with its test extras, then run the whole test suite (README: "run the tests").
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -e ".[dev]"
export WARP_CACHE_PATH="${WARP_CACHE_PATH:-$HOME/.cache/foundation/warp}"
python -m pytest tests -q "$@"
