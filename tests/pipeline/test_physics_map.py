"""The physics map's pieces: the explanations, their weighting, the held-out learned evidence,
and the site model each kind of transmitter gets."""

import dataclasses

import numpy as np
import pytest

from wifidiff_fast.physics.prior import load_calibration, prior_map
from wifidiff_fast.pipeline.localise import LocaliseParams
from wifidiff_fast.pipeline.physics_map import (
    ANTENNAS,
    PhysicsSettings,
    combine,
    heldout_at_samples,
    physics_explanations,
    physics_map,
)

from pipecases import layout

pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(H=48, W=48, n=24):
    b = layout(H, W, seed=3, fill=0.12)
    truth = prior_map(
        b, np.array([[12.0, 30.0]], np.float32), 5750.0, load_calibration(), step_px=1.0
    ).numpy()
    open_ = np.argwhere(b == 0)
    pick = open_[np.random.default_rng(1).choice(len(open_), n, replace=False)]
    s = np.column_stack([pick, truth[pick[:, 0], pick[:, 1]]]).astype(np.float64)
    return b, s, truth


def _idw_predict(b):
    """A stand-in learned map: inverse-distance weighting of the samples it is given."""
    rr, cc = np.mgrid[: b.shape[0], : b.shape[1]]

    def predict(subsets):
        out = []
        for x in subsets:
            d2 = (rr[..., None] - x[:, 0]) ** 2 + (cc[..., None] - x[:, 1]) ** 2
            w = 1.0 / np.maximum(d2, 1e-6) ** 2
            out.append((w * x[:, 2]).sum(-1) / w.sum(-1))
        return out

    return predict


def test_heldout_values_come_from_maps_that_did_not_see_the_sample():
    b, s, _ = _scene()
    seen = []

    def predict(subsets):
        seen.extend(subsets)
        return _idw_predict(b)(subsets)

    held = heldout_at_samples(predict, s, folds=4, seed=0)
    assert held.shape == (len(s),) and len(seen) == 4
    assert sum(len(x) for x in seen) == 3 * len(s)  # each sample is left out of exactly one fold
    # IDW reproduces a sample it was given: held-out values must differ from the samples
    assert np.all(np.abs(held - s[:, 2]) > 1e-6)
    full = _idw_predict(b)([s])[0][s[:, 0].astype(int), s[:, 1].astype(int)]
    np.testing.assert_allclose(full, s[:, 2], atol=1e-4)
    np.testing.assert_array_equal(held, heldout_at_samples(_idw_predict(b), s, folds=4, seed=0))  # seeded


def test_heldout_folds_are_capped_by_the_sample_count():
    b, s, _ = _scene(n=3)
    calls = []
    heldout_at_samples(lambda subsets: calls.append(len(subsets)) or _idw_predict(b)(subsets), s, folds=5)
    assert calls == [3]


def test_physics_map_is_its_explanations_combined():
    b, s, _ = _scene()
    params, cfg = load_calibration(), PhysicsSettings()
    learned = _idw_predict(b)([s])[0]
    ex = physics_explanations(b, s, params, 5750.0, cfg, 0, learned_dbm=learned)
    assert len(ex.maps) == len(ex.variances) == len(ex.evidence) == ex.n_sets + 2  # + kriging + learned
    pm = physics_map(b, s, params, 5750.0, cfg, seed=0, learned_dbm=learned)
    again = combine(ex, b, cfg)
    np.testing.assert_array_equal(pm.rss_dbm, again.rss_dbm)
    np.testing.assert_array_equal(pm.weights, again.weights)


def test_heldout_evidence_takes_weight_from_a_learned_map_that_only_copies_its_samples():
    b, s, _ = _scene()
    params, cfg = load_calibration(), PhysicsSettings()
    learned = _idw_predict(b)([s])[0]  # exact at the samples: its in-sample residual is zero
    held = heldout_at_samples(_idw_predict(b), s)
    optimistic = physics_explanations(b, s, params, 5750.0, cfg, 0, learned_dbm=learned)
    honest = physics_explanations(b, s, params, 5750.0, cfg, 0, learned_dbm=learned, learned_heldout=held)
    assert honest.evidence[-1] < optimistic.evidence[-1]
    np.testing.assert_array_equal(honest.evidence[:-1], optimistic.evidence[:-1])
    assert combine(honest, b, cfg).weights[-1] < combine(optimistic, b, cfg).weights[-1]


def _omni_scene(H=64, W=64, n=30, site=(22.0, 38.0), power_db=-17.0):
    """Noiseless samples of one omni transmitter whose power is far from the calibrated masts'."""
    b = layout(H, W, seed=4, fill=0.12)
    params = dataclasses.replace(load_calibration(), omni=True)
    truth = prior_map(b, np.array([site], np.float32), 5750.0, params, step_px=1.0).numpy() + power_db
    open_ = np.argwhere(b == 0)
    pick = open_[np.random.default_rng(2).choice(len(open_), n, replace=False)]
    s = np.column_stack([pick, truth[pick[:, 0], pick[:, 1]]]).astype(np.float64)
    return b, s, truth


def test_an_omni_transmitter_of_unknown_power_is_found_when_the_set_up_says_omni():
    b, s, truth = _omni_scene()
    open_ = b == 0
    fast = LocaliseParams(coarse_step_px=6.0, n_starts=2, max_sites=2, capacity=4)
    errors = {}
    for antenna in ANTENNAS:
        cfg = PhysicsSettings(localise=fast, antenna=antenna, kriging_fallback=False)
        pm = physics_map(b, s, load_calibration(), 5750.0, cfg)
        errors[antenna] = float(np.sqrt(np.mean((pm.rss_dbm[open_] - truth[open_]) ** 2)))
        if antenna == "omni":
            site = pm.localisation.sites[0]
            assert np.hypot(site.row - 22.0, site.col - 38.0) <= 3.0, site
            assert abs(site.offset_db - (-17.0)) < 1.0  # the power is fitted, not held to the masts'
    # the sector model, held near the masts' power, cannot reproduce it as well
    assert errors["omni"] < 1.0 < errors["sector"], errors


def test_the_site_model_of_each_antenna():
    params = load_calibration()
    p, search = PhysicsSettings(antenna="sector").site_model(params)
    assert p is params and search.offset_sigma_db == LocaliseParams().offset_sigma_db
    p, search = PhysicsSettings(antenna="omni").site_model(params)
    assert p.omni and search.offset_sigma_db is None
    assert p.path_loss_exp == params.path_loss_exp  # distance and walls as calibrated
    with pytest.raises(ValueError, match="antenna must be one of sector, omni"):
        PhysicsSettings(antenna="isotropic")
