"""Model evidence: the explanation that generated the samples gets the weight."""

import numpy as np
import pytest

from wifidiff_fast.pipeline.evidence import evidence_weights, kriging_evidence, site_set_evidence


def _rc(n=40, seed=0):
    return np.random.default_rng(seed).uniform(0, 128, (n, 2))


def test_a_site_set_that_explains_the_samples_beats_kriging():
    rc = _rc()
    rng = np.random.default_rng(1)
    d = np.linalg.norm(rc - [64.0, 64.0], axis=1) + 1
    y = -30 - 22 * np.log10(d) + rng.normal(0, 1.0, len(rc))  # strongly structured field
    prior = -30 - 22 * np.log10(d)
    e_phys = site_set_evidence(y - prior, rc, 3.5, 20.0, 0.2, n_sites=1)
    e_krig = kriging_evidence(y, rc)
    assert e_phys > e_krig


def test_a_wrong_site_set_loses_to_kriging():
    rc = _rc()
    rng = np.random.default_rng(2)
    y = -60 + rng.normal(0, 2.0, len(rc))  # a flat, noisy field
    wrong = -30 - 22 * np.log10(np.linalg.norm(rc - [10.0, 10.0], axis=1) + 1)
    res = y - wrong
    res = res - res.mean()  # even with its best offset
    assert kriging_evidence(y, rc) > site_set_evidence(res, rc, 3.5, 20.0, 0.2, n_sites=1)


def test_more_sites_cost_evidence():
    rc = _rc()
    r = np.random.default_rng(3).normal(0, 3.5, len(rc))
    one = site_set_evidence(r, rc, 3.5, 20.0, 0.2, n_sites=1)
    three = site_set_evidence(r, rc, 3.5, 20.0, 0.2, n_sites=3)
    assert one - three == pytest.approx(0.5 * 4 * np.log(len(rc)))


def test_weights_are_a_tempered_softmax_with_a_floor():
    w = evidence_weights([0.0, -1.0, -50.0], temperature=1.0)
    assert w.sum() == pytest.approx(1.0) and w[2] == 0.0
    assert w[0] / w[1] == pytest.approx(np.e)
    flat = evidence_weights([0.0, -1.0], temperature=16.0)
    assert flat[0] / flat[1] == pytest.approx(np.exp(1 / 16))


def test_a_log_prior_shifts_the_weights_by_its_mass():
    # equal evidence: the weights are the prior itself
    w = evidence_weights([0.0, 0.0, 0.0], temperature=16.0, log_prior=np.log([0.25, 0.25, 0.5]))
    np.testing.assert_allclose(w, [0.25, 0.25, 0.5])
    # the prior adds after the tempering: evidence 16·log 2 at T = 16 doubles the odds
    w = evidence_weights([16 * np.log(2.0), 0.0], temperature=16.0, log_prior=np.log([0.5, 0.5]))
    np.testing.assert_allclose(w, [2 / 3, 1 / 3])


def test_the_fallbacks_prior_share_does_not_shrink_with_more_site_sets():
    from wifidiff_fast.pipeline.physics_map import PhysicsSettings, _explanation_prior

    cfg = PhysicsSettings(fallback_share=0.5)
    for n_sets in (1, 4):
        p = np.exp(_explanation_prior(cfg, n_sets, n_sets + 2))  # kriging and the learned map
        np.testing.assert_allclose(p[:n_sets], 0.5 / n_sets)
        np.testing.assert_allclose(p[n_sets:], 0.25)
    assert _explanation_prior(PhysicsSettings(fallback_share=None), 4, 6) is None  # off: all alike
    assert PhysicsSettings().fallback_share == 0.5  # the shipped default
    assert _explanation_prior(cfg, 1, 1) is None  # known sites: nothing to share with
    with pytest.raises(ValueError, match="fallback_share"):
        PhysicsSettings(fallback_share=1.0)
