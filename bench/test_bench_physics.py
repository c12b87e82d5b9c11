"""The physics mode's hot path (pytest-benchmark): the ray march, and one localisation.

    pytest bench/test_bench_physics.py --benchmark-only

Localisation is almost all ray marching (every candidate position against every sample), so the
march is timed alone on a batch of the size localisation sends (41 positions × 50 samples, sites
up to half a window outside), and ``localise`` on a bundled simulator scene at N = 25. One torch
thread, as the evaluation runs it. Medians go to ``extra_info``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wifidiff_fast.data.loaders import example_scenes
from wifidiff_fast.data.protocol import draw_samples, map_seed
from wifidiff_fast.physics.prior import load_calibration
from wifidiff_fast.physics.raycast import segment_obstruction, unknown_rates
from wifidiff_fast.pipeline.localise import localise


@pytest.fixture(scope="module")
def scene():
    torch.set_num_threads(1)
    return next(s for s in example_scenes() if s.name.startswith("sim_"))


def test_bench_ray_march_localisation_batch(benchmark, scene):
    b = torch.as_tensor(scene.buildings)
    rng = np.random.default_rng(0)
    positions = torch.tensor(rng.uniform(-128, 384, (41, 2)), dtype=torch.float32)
    samples = draw_samples(scene.rss_dbm, scene.buildings, 50, map_seed(0, 0, 50))
    points = torch.as_tensor(samples[:, :2], dtype=torch.float32)
    a = positions[:, None].expand(41, 50, 2).reshape(-1, 2)
    p = points[None].expand(41, 50, 2).reshape(-1, 2)
    unknown = unknown_rates(b)
    out = benchmark.pedantic(
        lambda: segment_obstruction(b, a, p, step_px=1.0, unknown=unknown),
        rounds=15,
        iterations=1,
        warmup_rounds=2,
    )
    assert out[0].shape == (41 * 50,) and bool((out[1] >= 0).all())
    benchmark.extra_info["segments"] = 41 * 50
    benchmark.extra_info["median_ms"] = benchmark.stats.stats.median * 1e3


def test_bench_localise_n25(benchmark, scene):
    samples = draw_samples(scene.rss_dbm, scene.buildings, 25, map_seed(0, 0, 25))
    params = load_calibration()
    loc = benchmark.pedantic(
        lambda: localise(scene.buildings, samples, params, float(scene.freq_mhz)), rounds=3, iterations=1
    )
    assert loc.n_sites >= 1
    benchmark.extra_info["median_s"] = benchmark.stats.stats.median
