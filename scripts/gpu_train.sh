#!/usr/bin/env bash
# Train the shipped `small` checkpoint on a GPU machine (the device tool runs this in the repo root).
# Needs the BRAT development data under $WIFIDIFF_DATA_DIR (default .gpu/data, a git-ignored copy of
# ../shared/data/brat). Writes the checkpoint and the training logs under ${OUT:-out/gpu_train}.
# Usage: bash scripts/gpu_train.sh [joint-minutes] [extra train args, e.g. --init-from DIR]
set -euo pipefail
MINUTES=${1:-6.5}; shift || true
OUT=${OUT:-out/gpu_train}
RUN=${RUN:-/tmp/wifidiff_run}
export WIFIDIFF_DATA_DIR=${WIFIDIFF_DATA_DIR:-$PWD/.gpu/data} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
mkdir -p "$OUT"
nvidia-smi -L || true
$PY -m wifidiff_fast.train --preset small --run "$RUN" --device cuda --minutes "$MINUTES" --batch 16 \
    --mix "${MIX:-brat:0.5,sim:0.5}" --val-every 100 --save-every 500 "$@"
$PY -m wifidiff_fast.train --run "$RUN" --device cuda --stage correction --corr-maps 192 \
    --corr-candidates 16 --corr-epochs 40 --mix "${MIX:-brat:0.5,sim:0.5}" --export "$OUT/small" --name small --plot
cp "$RUN/log.csv" "$RUN/correction_log.csv" "$RUN/loss.png" "$OUT/"
