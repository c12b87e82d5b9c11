#!/usr/bin/env bash
# Continue training from a checkpoint on a GPU machine, run the correction stage and export.
# Usage: bash scripts/gpu_train_continue.sh INIT_DIR MINUTES [MIX]
set -euo pipefail
INIT=$1; MINUTES=${2:-5}; MIX=${3:-brat:0.5,sim:0.5}
OUT=${OUT:-out/gpu_train}
RUN=${RUN:-/tmp/wifidiff_continue}
export WIFIDIFF_DATA_DIR=${WIFIDIFF_DATA_DIR:-$PWD/.gpu/data} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
mkdir -p "$OUT"
$PY -m wifidiff_fast.train --preset small --run "$RUN" --device cuda --minutes "$MINUTES" --batch 16 \
    --mix "$MIX" --val-every 100 --save-every 1000 --seed 3 --init-from "$INIT" --reinit correction
$PY -m wifidiff_fast.train --run "$RUN" --device cuda --stage correction --corr-maps 192 --batch 16 \
    --corr-candidates 16 --corr-epochs 40 --mix "$MIX" --export "$OUT/small" --name small --plot
cp "$RUN/log.csv" "$RUN/correction_log.csv" "$RUN/loss.png" "$OUT/"
