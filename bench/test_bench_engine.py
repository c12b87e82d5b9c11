"""pytest-benchmark suites of the engine (run: ``make bench`` / ``pytest bench --benchmark-only``).

The fast path (the boost map alone, ``candidates=0``) of the engine and of the eager fp32
reference beside PyKrige ordinary kriging and SciPy RBF on the same bundled map and N = 50
samples (issue #12's fast-path target), and one DDIM-step worth of denoiser calls for K = 64
per network backend. Inputs come from ``wifidiff_fast.bench.engine``; no timing code lives here.
Compare within one group (``--benchmark-group-by=group``).
"""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.bench.engine import inputs
from wifidiff_fast.pipeline.estimator import RadioMapEstimator
from wifidiff_fast.runtime.backends import availability

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ITEMS = inputs(1, 50)


@pytest.fixture(scope="module")
def estimators():
    eng = RadioMapEstimator.from_pretrained("small", device=DEVICE, network_backend="auto", progress=False)
    ref = RadioMapEstimator.from_pretrained("small", device=DEVICE, backend="reference", progress=False)
    for est in (eng, ref):
        est.prepare((256, 256), 1, 64)
    return {"engine": eng, "reference": ref}


@pytest.mark.benchmark(group="fast path: boost map, 256², N=50")
@pytest.mark.parametrize("impl", ["engine", "reference"])
def test_fast_path(benchmark, estimators, impl):
    est = estimators[impl]
    benchmark.pedantic(
        lambda: est.estimate_batch(ITEMS, mode="diffusion", candidates=0), rounds=5, warmup_rounds=1
    )


@pytest.mark.benchmark(group="fast path: boost map, 256², N=50")
@pytest.mark.parametrize("peer", ["kriging", "rbf"])
def test_fast_path_peers(benchmark, peer):
    from wifidiff_fast.eval import baselines

    fn = getattr(baselines, peer)
    ((b, s),) = ITEMS
    benchmark.pedantic(lambda: fn(b, s), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="denoiser, one DDIM step of K=64 at 256²")
@pytest.mark.parametrize("backend", ["eager", "aot", "onnx", "compile"])
def test_denoiser_step(benchmark, backend):
    from wifidiff_fast.models.checkpoint import load_checkpoint
    from wifidiff_fast.pipeline.estimator import CHECKPOINTS_DIR
    from wifidiff_fast.runtime.runners import make_runner

    if not availability(backend, DEVICE).ok:
        pytest.skip(availability(backend, DEVICE).reason)
    nets, _ = load_checkpoint(CHECKPOINTS_DIR / "small", device=DEVICE)
    runner = make_runner(backend, nets.denoiser, DEVICE, channels_last=backend != "eager")
    chunk = 16 if backend == "eager" else 64  # the estimator's chunk: reference vs engine
    x = torch.randn(64, 7, 256, 256, device=DEVICE)
    t = torch.full((64,), 500, device=DEVICE)
    runner.prepare(x[:chunk], t[:chunk])

    def step():
        with torch.inference_mode():
            for a in range(0, 64, chunk):
                runner(x[a : a + chunk], t[a : a + chunk])

    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
