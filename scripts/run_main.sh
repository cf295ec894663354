#!/usr/bin/env bash
# The main job on a fresh machine (README): install, train the point-control teacher with PPO, distil a deployable
# GRU student from it with two-phase DAgger, and print both deterministic evaluations.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -e .
python foundation/rsl_rl/train.py --task point_ctrl "$@"
python foundation/rsl_rl/train.py --task distillation "$@"
