#!/usr/bin/env bash
# Two training runs side by side on one GPU (different data mixes), continuing from a checkpoint;
# the one with the lower boost RMSE on the validation region (BRAT region 2) is finished with the
# correction stage and exported. Usage: bash scripts/gpu_train_select.sh INIT_DIR MINUTES
set -euo pipefail
INIT=$1; MINUTES=${2:-7}
OUT=${OUT:-out/gpu_train}
export WIFIDIFF_DATA_DIR=${WIFIDIFF_DATA_DIR:-$PWD/.gpu/data} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
mkdir -p "$OUT"
declare -A MIXES=([a]="brat:0.5,sim:0.5" [b]="brat:0.8,sim:0.2")
for k in a b; do
  $PY -m wifidiff_fast.train --preset small --run /tmp/run_$k --device cuda --minutes "$MINUTES" --batch 16 \
      --mix "${MIXES[$k]}" --val-every 100 --save-every 1000 --seed $([ $k = a ] && echo 1 || echo 2) --init-from "$INIT" \
      --reinit denoiser,correction > /tmp/run_$k.log 2>&1 &
done
wait
best=$($PY - <<'PY'
import csv
score = {}
for k in "ab":
    rows = [r for r in csv.DictReader(open(f"/tmp/run_{k}/log.csv")) if r["val_rmse_db_boost"]]
    score[k] = sum(float(r["val_rmse_db_boost"]) for r in rows[-3:]) / 3
    print(k, score[k], file=__import__("sys").stderr)
print(min(score, key=score.get))
PY
)
echo "selected run $best (${MIXES[$best]})"
$PY -m wifidiff_fast.train --run /tmp/run_$best --device cuda --stage correction --corr-maps 192 \
    --corr-candidates 16 --corr-epochs 40 --mix "${MIXES[$best]}" --export "$OUT/small" --name small --plot
for k in a b; do cp /tmp/run_$k/log.csv "$OUT/log_$k.csv"; done
cp /tmp/run_$best/correction_log.csv /tmp/run_$best/loss.png "$OUT/"
