"""Localisation by analysis by synthesis: planted sites are found, hypotheses keep a fixed shape,
bad settings and bad transmitter priors are refused."""

import numpy as np
import pytest

from wifidiff_fast.physics.prior import load_calibration, prior_map
from wifidiff_fast.pipeline.localise import LocaliseParams, check_sites, known_sites, localise

pytestmark = pytest.mark.usefixtures("one_thread")

PARAMS = load_calibration()


def _city(H=96, W=96, seed=0):
    rng = np.random.default_rng(seed)
    b = np.zeros((H, W), np.uint8)
    for _ in range(14):
        r, c = rng.integers(0, H - 10), rng.integers(0, W - 10)
        b[r:r + rng.integers(3, 9), c:c + rng.integers(3, 9)] = 1
    return b


def _noiseless_samples(b, sites, n, seed=1):
    truth = prior_map(b, np.asarray(sites, np.float32), 5750.0, PARAMS, step_px=1.0).numpy()
    rng = np.random.default_rng(seed)
    open_ = np.argwhere(b == 0)
    pick = open_[rng.choice(len(open_), n, replace=False)]
    return np.column_stack([pick, truth[pick[:, 0], pick[:, 1]]]).astype(np.float64)


FAST = LocaliseParams(coarse_step_px=6.0, n_starts=2, max_sites=2, capacity=4)


@pytest.mark.parametrize("site", [(40.0, 55.0), (-20.0, 30.0)], ids=["inside", "outside"])
def test_a_planted_site_is_found_within_a_few_pixels(site):
    b = _city()
    s = _noiseless_samples(b, [site], 25)
    loc = localise(b, s, PARAMS, 5750.0, FAST)
    best = np.array(loc.sites[0].rc())
    assert np.linalg.norm(best - np.array(site)) <= 3.0, (best, site)
    assert loc.misfit_db < 1.0
    assert abs(loc.sites[0].offset_db) < 1.0  # the planted site transmits at the calibrated power


def test_two_planted_sites_are_both_found():
    b = _city(seed=2)
    sites = [(20.0, 20.0), (75.0, 80.0)]
    s = _noiseless_samples(b, sites, 40)
    loc = localise(b, s, PARAMS, 5750.0, LocaliseParams(coarse_step_px=6.0, n_starts=2, max_sites=3))
    found = np.array([h.rc() for h in loc.sites])
    for t in sites:
        assert np.min(np.linalg.norm(found - np.array(t), axis=1)) <= 4.0, (found, t)


def test_hypotheses_have_a_fixed_capacity_and_are_ordered():
    b = _city()
    s = _noiseless_samples(b, [(40.0, 55.0)], 15)
    loc = localise(b, s, PARAMS, 5750.0, FAST)
    arr = loc.as_array()
    assert arr.shape == (FAST.capacity, 5)
    assert 1 <= loc.n_sites <= FAST.max_sites
    assert loc.grid_scores.ndim == 2 and np.isfinite(loc.grid_scores).all()
    scores = [st.score for st in loc.sets]
    assert scores == sorted(scores)


def test_localisation_is_deterministic():
    b = _city()
    s = _noiseless_samples(b, [(40.0, 55.0)], 80)  # above max_coarse_samples: the seeded subset
    cfg = LocaliseParams(coarse_step_px=6.0, n_starts=2, max_sites=1, max_coarse_samples=30)
    a = localise(b, s, PARAMS, 5750.0, cfg, seed=3).as_array()
    c = localise(b, s, PARAMS, 5750.0, cfg, seed=3).as_array()
    np.testing.assert_array_equal(a, c)


def test_known_sites_fit_only_the_offset():
    b = _city()
    s = _noiseless_samples(b, [(40.0, 55.0)], 20)
    s[:, 2] += 4.0  # a site 4 dB louder than calibrated
    loc = known_sites(b, s, np.array([[40.0, 55.0]]), PARAMS, 5750.0, LocaliseParams(offset_sigma_db=None))
    assert loc.n_sites == 1 and loc.sites[0].offset_db == pytest.approx(4.0, abs=0.05)


def test_bad_settings_and_priors_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        LocaliseParams(capacity=0)
    with pytest.raises(ValueError, match="max_sites"):
        LocaliseParams(capacity=2, max_sites=3)
    with pytest.raises(ValueError, match="outside the grid margin"):
        check_sites([[10.0, 10.0], [500.0, 10.0]], (96, 96), 0.5)
    with pytest.raises(ValueError, match="finite"):
        check_sites([[np.nan, 1.0]], (96, 96), 0.5)
    with pytest.raises(ValueError, match="empty"):
        check_sites(np.zeros((0, 2)), (96, 96), 0.5)
    assert check_sites([[-40.0, 130.0]], (96, 96), 0.5).shape == (1, 2)
