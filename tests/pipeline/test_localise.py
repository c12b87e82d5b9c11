"""Localisation by analysis by synthesis: planted sites are found, hypotheses keep a fixed shape,
bad settings and bad transmitter priors are refused."""

import numpy as np
import pytest
import torch

from wifidiff_fast.physics.prior import load_calibration, prior_map
from wifidiff_fast.pipeline.localise import (
    LocaliseParams,
    SiteHypothesis,
    _Scorer,
    check_sites,
    inside_log_prior,
    known_sites,
    localise,
    outside_distance,
)

pytestmark = pytest.mark.usefixtures("one_thread")

PARAMS = load_calibration()


def _city(H=96, W=96, seed=0):
    rng = np.random.default_rng(seed)
    b = np.zeros((H, W), np.uint8)
    for _ in range(14):
        r, c = rng.integers(0, H - 10), rng.integers(0, W - 10)
        b[r : r + rng.integers(3, 9), c : c + rng.integers(3, 9)] = 1
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


def test_outside_distance_and_the_inside_log_prior():
    d = outside_distance(torch.tensor([[10.0, 10.0], [-3.0, 50.0], [-3.0, -4.0], [100.0, 95.0]]), (96, 96))
    np.testing.assert_allclose(d.numpy(), [0.0, 3.0, 5.0, 5.0], atol=1e-6)
    far, near = SiteHypothesis(-30.0, 10.0, 0, 0, 0), SiteHypothesis(-10.0, 10.0, 0, 0, 0)
    assert inside_log_prior([far], (96, 96), None) == 0.0
    assert inside_log_prior([far], (96, 96), 10.0) == pytest.approx(-4.5)
    assert inside_log_prior([far, near], (96, 96), 10.0) == pytest.approx(-0.5)  # the nearest site counts


def test_the_inside_prior_trades_fit_for_a_site_near_the_grid():
    # A site 30 px above the grid: the free search finds it; a tight inside prior (σ = 3 px)
    # pays some misfit to bring it to the grid's edge, and the set's score carries the prior.
    b = _city()
    s = _noiseless_samples(b, [(-30.0, 48.0)], 25)
    free = localise(b, s, PARAMS, 5750.0, FAST)
    pulled = localise(
        b,
        s,
        PARAMS,
        5750.0,
        LocaliseParams(coarse_step_px=6.0, n_starts=2, max_sites=2, capacity=4, inside_sigma_px=3.0),
    )
    d_free = float(outside_distance(torch.tensor([free.sites[0].rc()]), b.shape)[0])
    d_pulled = min(float(outside_distance(torch.tensor([h.rc()]), b.shape)[0]) for h in pulled.sites)
    assert d_free == pytest.approx(30.0, abs=3.0)
    assert d_pulled < 10.0
    assert pulled.misfit_db > free.misfit_db


def test_extra_starts_are_grown_into_sets_of_their_own():
    b = _city()
    s = _noiseless_samples(b, [(40.0, 55.0)], 20)
    cfg = LocaliseParams(coarse_step_px=6.0, n_starts=1, max_sites=1, capacity=4)
    plain = localise(b, s, PARAMS, 5750.0, cfg)
    seeded = localise(b, s, PARAMS, 5750.0, cfg, extra_starts=[[-40.0, -40.0]])
    assert len(plain.sets) == 1 and len(seeded.sets) == 2
    assert np.linalg.norm(np.array(seeded.sets[0].sites[0].rc()) - [40.0, 55.0]) <= 3.0  # still the best
    far = np.array(seeded.sets[1].sites[0].rc())
    assert np.linalg.norm(far - [-40.0, -40.0]) <= 2 * 6.0  # refined near its start, not moved away
    assert seeded.sets[1].score > seeded.sets[0].score


def test_bad_settings_and_priors_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="inside_sigma_px"):
        LocaliseParams(inside_sigma_px=0.0)
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


def test_the_scorer_casts_each_position_once_and_keeps_it_within_its_budget(monkeypatch):
    """Positions the search visits again come from the memo (each cast once), equal to a fresh
    cast to float32 rounding; the memo starts afresh when it would outgrow its budget."""
    b = _city()
    s = _noiseless_samples(b, [(40.0, 55.0)], 20)
    scorer = _Scorer(b, s[:, :2], PARAMS, 5750.0, 1.0)
    cast = []
    real = scorer._cast
    monkeypatch.setattr(scorer, "_cast", lambda pos, q: cast.append(len(pos)) or real(pos, q))
    first = torch.tensor([[10.0, 12.0], [-30.0, 50.0], [10.0, 12.0]])
    rows = scorer.site_db(first)
    assert cast == [2] and torch.equal(rows[0], rows[2])  # the repeated position cast once
    again = scorer.site_db(torch.tensor([[-30.0, 50.0], [70.0, 3.0]]))
    assert cast == [2, 1] and torch.equal(again[0], rows[1])  # only the new one is cast
    fresh = _Scorer(b, s[:, :2], PARAMS, 5750.0, 1.0).site_db(torch.tensor([[70.0, 3.0]]))
    torch.testing.assert_close(again[1], fresh[0], rtol=0, atol=1e-4)
    scorer.site_db(torch.tensor([[1.0, 2.0]]), idx=torch.tensor([0, 3]))  # subsets are not kept
    assert len(scorer._rows) == 3
    monkeypatch.setattr(_Scorer, "MAX_KEPT", 3 * len(s))
    scorer.site_db(torch.tensor([[5.0, 5.0]]))
    assert set(scorer._rows) == {(5.0, 5.0)}
