"""pytest-benchmark suites of the fused ops (run: ``make bench`` / ``pytest bench --benchmark-only``).

Each op is benchmarked per available backend beside the reference and the peers named in
issue #5, on the issue's workloads; compare within one group (``--benchmark-group-by=group``).
The inputs and the ratios' definitions are those of ``wifidiff_fast.bench.ops``; no timing code
lives here.
"""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.bench import ops as B

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = B._backends(DEVICE)


@pytest.fixture(scope="module", autouse=True)
def _malloc():
    B.tune_malloc()


@pytest.fixture(scope="module")
def ddim_inputs():
    from wifidiff_fast.sampling.schedules import SchedulerConfig, ddim_table

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 256, 256, generator=g).to(DEVICE)
    eps = torch.randn(64, 1, 256, 256, generator=g).to(DEVICE)
    table, _ = ddim_table(SchedulerConfig(), 10, device=DEVICE)
    return x, eps, table, torch.tensor(3, device=DEVICE)


@pytest.mark.benchmark(group="ddim_step 64x1x256x256")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ddim_step(benchmark, ddim_inputs, backend):
    from wifidiff_fast.ops import ddim_step

    x, eps, table, step = ddim_inputs
    benchmark(lambda: ddim_step(x, eps, table, step, backend=backend))


@pytest.mark.benchmark(group="ddim_step 64x1x256x256")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ddim_step_with_known_write(benchmark, ddim_inputs, backend):
    """The fused known-sample write: one map's condition raster shared by its 64 candidates."""
    from wifidiff_fast.ops import ddim_step

    x, eps, table, step = ddim_inputs
    g = torch.Generator().manual_seed(1)
    known = (torch.rand(1, 1, 256, 256, generator=g) * 2 - 1).to(DEVICE)
    mask = (torch.rand(1, 1, 256, 256, generator=g) < 264 / 256**2).to(DEVICE, torch.uint8)
    benchmark(lambda: ddim_step(x, eps, table, step, known=known, known_mask=mask, backend=backend))


@pytest.mark.benchmark(group="ddim_step 64x1x256x256")
def test_ddim_step_diffusers(benchmark, ddim_inputs):
    diffusers = pytest.importorskip("diffusers")
    x, eps, _, _ = ddim_inputs
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", clip_sample=True, set_alpha_to_one=True
    )
    sched.set_timesteps(10)
    t = int(sched.timesteps[3])
    benchmark(lambda: sched.step(eps, t, x, eta=0.0))


@pytest.fixture(scope="module")
def maps():
    R, bld = B._maps(64, 256, 256, DEVICE)
    return R, (bld != 0).to(torch.uint8)


@pytest.mark.benchmark(group="critical_points 64x256x256")
@pytest.mark.parametrize("backend", BACKENDS)
def test_critical_points(benchmark, maps, backend):
    from wifidiff_fast.ops import critical_points

    R, b8 = maps
    rounds = 2 if backend == "reference" else 10
    benchmark.pedantic(
        lambda: critical_points(R, b8, 1.5, 64, backend=backend), rounds=rounds, warmup_rounds=1
    )


@pytest.mark.benchmark(group="critical_points 64x256x256")
def test_critical_points_skimage_loop(benchmark, maps):
    feature = pytest.importorskip("skimage.feature")
    arr = maps[0].float().cpu().numpy()

    def run():
        for m in arr:
            feature.structure_tensor_eigenvalues(feature.structure_tensor(m, sigma=1.5, order="rc"))

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="critical_points 64x256x256")
def test_critical_points_opencv_loop(benchmark, maps):
    cv2 = pytest.importorskip("cv2")
    arr = maps[0].float().cpu().numpy()

    def run():
        for m in arr:
            cv2.cornerEigenValsAndVecs(m, 11, 3)

    benchmark(run)


@pytest.mark.benchmark(group="elect 1x64x256x256")
@pytest.mark.parametrize("backend", BACKENDS)
def test_elect(benchmark, backend):
    import torch.nn.functional as F

    from wifidiff_fast.ops import ElectionParams, elect

    R, bld = B._maps(1, 256, 256, DEVICE)
    g = torch.Generator().manual_seed(2)
    noise = F.interpolate(
        torch.randn(1, 64, 32, 32, generator=g), size=(256, 256), mode="bilinear", align_corners=False
    )
    cand = (R.cpu()[:, None] + 0.1 * noise).to(DEVICE)
    S, M = torch.zeros_like(R), torch.zeros_like(R)
    M[:, ::37, ::41] = 1.0
    alpha = torch.ones(1, device=DEVICE)
    rounds = 3 if backend == "reference" else 10
    benchmark.pedantic(
        lambda: elect(cand, R, S, M, bld, alpha, ElectionParams(), backend=backend),
        rounds=rounds,
        warmup_rounds=1,
    )
