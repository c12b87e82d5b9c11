"""Property-based tests (hypothesis) over random valid inputs.

For every estimate: the output has the grid's shape, is NaN exactly on buildings and finite
elsewhere, is the same for the same seed, and keeps every measurement (duplicates averaged).
Small grids (32–48 px) keep each example under ~0.1 s: the diffusion path runs with
``candidates=0`` (the boost map) and ``candidates=2, steps=2``; the physics default on 32–40 px.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from wifidiff_fast import RadioMapEstimator
from wifidiff_fast.data.validate import check_samples
from wifidiff_fast.tiling import blend_weight, plan_tiles

pytestmark = pytest.mark.usefixtures("one_thread")
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def est():
    return RadioMapEstimator.from_pretrained("small")


@st.composite
def scenes(draw, min_side=32, max_side=48):
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    b = (rng.random((h, w)) < draw(st.floats(0.0, 0.6))).astype(np.uint8)
    b.flat[int(rng.integers(b.size))] = 0  # at least one open pixel
    free = np.argwhere(b == 0)
    n = draw(st.integers(1, 20))
    pick = free[rng.integers(0, len(free), n)]  # duplicates allowed: they are averaged
    rss = np.round(rng.uniform(-130.0, -10.0, n), 3)
    return b, np.column_stack([pick, rss]).astype(np.float64)


def _check_properties(est, b, s, **kwargs):
    res = est.estimate(b, s, seed=3, **kwargs)
    assert res.rss_dbm.shape == b.shape and res.rss_dbm.dtype == np.float32
    assert np.array_equal(np.isnan(res.rss_dbm), b == 1)
    clean = check_samples(s, b)
    got = res.rss_dbm[clean[:, 0].astype(int), clean[:, 1].astype(int)]
    np.testing.assert_allclose(got, clean[:, 2], atol=1e-4)  # float32 storage of the measurement
    again = est.estimate(b, s, seed=3, **kwargs)
    np.testing.assert_array_equal(again.rss_dbm, res.rss_dbm)
    np.testing.assert_array_equal(again.uncertainty_db, res.uncertainty_db)
    return res


@SETTINGS
@given(scene=scenes())
def test_boost_map_properties(est, scene):
    _check_properties(est, *scene, mode="diffusion", candidates=0)


@SETTINGS
@given(scene=scenes())
def test_diffusion_properties(est, scene):
    res = _check_properties(est, *scene, mode="diffusion", candidates=2, steps=2)
    b = scene[0]
    assert np.isfinite(res.uncertainty_db[b == 0]).all() and (res.uncertainty_db[b == 0] >= 0).all()


@settings(SETTINGS, max_examples=6)
@given(scene=scenes(32, 40))
def test_physics_properties(est, scene):
    res = _check_properties(est, *scene)
    assert 0 <= res.n_sites <= len(res.transmitters)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(scene=scenes(4, 64))
def test_duplicates_average_to_one_sample_per_pixel(scene):
    b, s = scene
    clean = check_samples(s, b)
    pixels = clean[:, 0] * b.shape[1] + clean[:, 1]
    assert len(np.unique(pixels)) == len(clean) == len(np.unique(s[:, 0] * b.shape[1] + s[:, 1]))
    for r, c, v in clean:
        same = (s[:, 0] == r) & (s[:, 1] == c)
        assert v == pytest.approx(s[same, 2].mean())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(h=st.integers(1, 900), w=st.integers(1, 900), tile=st.integers(32, 300), frac=st.floats(0, 0.5))
def test_tiles_cover_the_region_and_weights_are_positive(h, w, tile, frac):
    overlap = int(frac * tile) if tile // 2 else 0
    overlap = min(overlap, tile // 2)
    tiles = plan_tiles((h, w), tile, overlap)
    cover = np.zeros((h, w))
    for t in tiles:
        assert 0 <= t.r0 and t.r0 + t.h <= h and 0 <= t.c0 and t.c0 + t.w <= w
        wgt = blend_weight(t, (h, w), tiles)
        assert (wgt > 0).all() and (wgt <= 1).all()
        cover[t.window] += 1
    assert (cover >= 1).all()
