#!/usr/bin/env bash
# GPU checks of the fused ops (`make gpu-check`; issue #5). On a machine with a CUDA device:
#   1. build the C++/CUDA extension (JIT, into $WIFIDIFF_CACHE_DIR) and print the backends;
#   2. run tests/ops with the GPU (cuda + triton vs the float64 reference, fp16/bf16 2x rule,
#      opcheck, CUDA-graph capture/replay), Triton compiled (not interpreted), and the whole
#      pipeline through each kernel backend vs the reference ops (tests/pipeline/test_backends.py);
#   3. `python -m wifidiff_fast.bench ops --device cuda`: Triton vs CUDA vs reference, achieved
#      bandwidth as a fraction of the device's peak, JSON + markdown table;
#   4. tests/runtime on the GPU (CUDA-graph capture/replay vs the eager request, CUDA-event stage
#      timings) and `python -m wifidiff_fast.bench paper reuse --device cuda --graphs` (issue #12).
# Writes everything under $OUT (default out/gpu-check). Budget: < 15 minutes on an H100.
# Needs python with torch (CUDA build), triton, numpy, pytest; scikit-image/opencv/diffusers
# only for the peer rows (skipped when missing). No network access is needed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-out/gpu-check}
mkdir -p "$OUT"
export WIFIDIFF_CACHE_DIR=${WIFIDIFF_CACHE_DIR:-$PWD/.gpu/cache}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export TRITON_INTERPRET=0            # tests/conftest.py only sets it when unset
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
unset WIFIDIFF_BACKEND WIFIDIFF_DISABLE_NATIVE
status=0
t0=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - t0 )) s)"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name())" 2>&1 | tee "$OUT/env.txt"
$PY -c "import triton; print('triton', triton.__version__)" 2>&1 | tee -a "$OUT/env.txt"
command -v nvcc >/dev/null && nvcc --version | tail -1 | tee -a "$OUT/env.txt"

step "build the native extension (JIT) and list the backends"
timeout 200 $PY -m wifidiff_fast info 2>&1 | tee "$OUT/info.txt" || status=1

step "tests/ops on the GPU"
if $PY -c "import pytest" 2>/dev/null; then
  timeout 260 $PY -m pytest -q -p no:cacheprovider -o addopts="" tests/ops tests/pipeline/test_backends.py \
      -rs --durations=8 \
      --junitxml="$OUT/tests_ops.xml" 2>&1 | tee "$OUT/tests_ops.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "pytest missing: tests skipped" | tee "$OUT/tests_ops.txt"; status=1
fi

step "op benchmark (cuda)"
timeout 90 $PY -m wifidiff_fast.bench ops --device cuda --repeat 30 \
    --json "$OUT/bench_ops_cuda.json" 2>&1 | tee "$OUT/bench_ops_cuda.md" || status=1

step "runtime on the GPU: network backends, CUDA-graph capture/replay vs eager, CUDA-event timings"
if $PY -c "import pytest" 2>/dev/null; then
  timeout 300 $PY -m pytest -q -p no:cacheprovider -o addopts="" tests/runtime -rs --durations=8 \
      --junitxml="$OUT/tests_runtime.xml" 2>&1 | tee "$OUT/tests_runtime.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

step "engine vs eager fp32 reference (paper + reuse; compiled networks under CUDA graphs)"
timeout 400 $PY -m wifidiff_fast.bench paper reuse --device cuda --backend compile --graphs --warmup 2 --runs 10 \
    --json "$OUT/bench_engine_cuda.json" 2>&1 | tee "$OUT/bench_engine_cuda.md" || status=1

step "done: status $status, outputs in $OUT"
exit $status
