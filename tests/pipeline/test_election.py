"""The election picks the best candidate; the shipped ``small`` checkpoint end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wifidiff_fast import _env, ops
from wifidiff_fast.reference.elect import ElectionParams

from pipecases import SHIPPED, estimator, layout, samples_for

pytestmark = pytest.mark.usefixtures("one_thread")


def _truth(H=48, W=48, tx=(20, 28)):
    rr = torch.arange(H, dtype=torch.float32)[:, None]
    cc = torch.arange(W, dtype=torch.float32)[None, :]
    d = torch.sqrt((rr - tx[0]) ** 2 + (cc - tx[1]) ** 2).clamp_min(2.0)
    # free-space decay, 20 dB per decade (one model unit = 60 dB for db_span 120), flattened
    # within 2 px of the transmitter so no unit step is "volatile" (> tau_db = 6 dB)
    return (0.6 - torch.log10(d) / 3.0)[None]


@pytest.mark.parametrize("backend", ["reference", None], ids=["reference", "auto"])
@pytest.mark.parametrize("planted", [0, 2, 4])
def test_elect_picks_the_planted_candidate(backend, planted):
    truth = _truth()
    H, W = truth.shape[-2:]
    g = torch.Generator().manual_seed(planted)
    B = torch.zeros(1, H, W)
    B[0, 2:8, 3:12] = 1
    M = (torch.rand(1, H, W, generator=g) < 0.03).float() * (1 - B)
    S = truth * M
    # the others: the truth shifted, or tilted, or noisy; the planted one is the truth itself
    others = [
        truth + 0.1,
        truth - 0.15,
        truth + 0.05 * torch.randn(1, H, W, generator=g),
        truth * 0.8,
        truth + 0.2,
    ]
    cands = others[:planted] + [truth] + others[planted:4]
    cand = torch.stack(cands, dim=1)  # [1, 5, H, W]
    scores, elected, spread = ops.elect(
        cand, truth, S, M, B, torch.ones(1), ElectionParams(), backend=backend
    )
    assert int(elected[0]) == planted
    assert scores[0, planted] < torch.cat([scores[0, :planted], scores[0, planted + 1 :]]).min()
    assert spread.shape == (1, H, W) and (spread[B > 0] == 0).all() and (spread[B == 0] > 0).all()


def test_shipped_small_checkpoint_estimates_a_synthetic_layout():
    b = layout(256, 256, seed=3, fill=0.2)
    s = samples_for(b, 40, seed=4)
    est = estimator(SHIPPED, backend="auto")
    res = est.estimate(b, s, mode="diffusion", candidates=2, steps=2, seed=0, return_candidates=True)
    assert res.rss_dbm.shape == (256, 256)
    assert np.array_equal(np.isnan(res.rss_dbm), b == 1)
    assert np.isfinite(res.rss_dbm[b == 0]).all() and np.isfinite(res.scores).all()
    assert res.candidates_dbm.shape == (3, 256, 256) and 0 <= res.elected <= 2
    assert 0 < res.alpha < np.exp(6.0 + 1e-6)
    fast = est.estimate(b, s, mode="diffusion", candidates=0, seed=0)
    np.testing.assert_array_equal(fast.R_hat_dbm, res.R_hat_dbm)


def test_shipped_small_checkpoint_is_accurate_on_held_out_brat():
    """Region 2 is never read in training: the shipped estimate beats the samples' mean by far."""
    data = _env.data_dir()
    if not (data / "brat").is_dir():
        pytest.skip(f"BRAT data not found under {data} (set WIFIDIFF_DATA_DIR)")
    from wifidiff_fast.data.loaders import brat_scenes
    from wifidiff_fast.data.protocol import draw_samples, map_seed

    scene = brat_scenes(2, bands_mhz=(1750,), data_dir=data)[0]
    s = draw_samples(scene.rss_dbm, scene.buildings, 50, map_seed(0, 0, 50))
    res = estimator(SHIPPED, backend="auto").estimate(
        scene.buildings, s, mode="diffusion", candidates=2, steps=2, seed=0
    )
    open_ = scene.buildings == 0
    err = res.rss_dbm[open_] - scene.rss_dbm[open_]
    rmse = float(np.sqrt(np.mean(err**2)))
    baseline = float(np.sqrt(np.mean((scene.rss_dbm[open_] - s[:, 2].mean()) ** 2)))
    assert rmse < 12.0 and rmse < 0.75 * baseline, (rmse, baseline)


# ---------------------------------------------------------------------------- pipeline.election
def _election_inputs(n=2, K=3, H=24, W=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    B = (torch.rand(n, H, W, generator=g) < 0.2).float()
    M = (torch.rand(n, H, W, generator=g) < 0.05).float() * (1 - B)
    R_hat = torch.rand(n, H, W, generator=g) * 2 - 1
    S = R_hat * M
    cand = (R_hat[:, None] + 0.1 * torch.randn(n, K, H, W, generator=g)).clamp(-1, 1)
    return cand, R_hat, B, S, M


def _log_alpha(feats):
    """A stand-in correction network: log α depends on the map's features."""
    return feats.mean(dim=(1, 2, 3))


@pytest.mark.parametrize("backend", ["reference", None], ids=["reference", "auto"])
@pytest.mark.parametrize("boost_candidate", [True, False])
def test_pipeline_election_is_the_reference_election_with_the_boost_map_as_candidate_K(
    backend, boost_candidate
):
    from wifidiff_fast.models.features import correction_inputs
    from wifidiff_fast.pipeline.election import elect
    from wifidiff_fast.reference.elect import elect_ref

    cand, R_hat, B, S, M = _election_inputs()
    n, K, H, W = cand.shape
    params = ElectionParams()
    out = elect(cand, R_hat, B, S, M, _log_alpha, params, boost_candidate=boost_candidate, backend=backend)
    alpha = torch.exp(_log_alpha(correction_inputs(R_hat, S, M, B, params.db_span)))
    field = torch.cat([cand, R_hat[:, None]], dim=1) if boost_candidate else cand
    scores, elected, spread = elect_ref(field, R_hat, S, M, B, alpha, params)
    torch.testing.assert_close(out.alpha, alpha)
    torch.testing.assert_close(out.scores, scores, rtol=1e-5, atol=1e-6)
    assert torch.equal(out.elected, elected) and torch.equal(out.cand, field)
    assert torch.equal(out.chosen, field[torch.arange(n), elected])
    # the uncertainty is the spread of the K diffusion candidates alone, 0 on buildings
    expect = cand.std(dim=1, unbiased=False) * (params.db_span / 2) * (B == 0)
    torch.testing.assert_close(out.spread, expect, rtol=1e-5, atol=1e-5)


def test_pipeline_election_without_boost_or_without_election():
    from wifidiff_fast.pipeline.election import elect

    cand, R_hat, B, S, M = _election_inputs(seed=1)
    params = ElectionParams()

    def never(feats):
        raise AssertionError("no R̂ to correct towards: the correction network is not called")

    no_boost = elect(cand, torch.zeros_like(R_hat), B, S, M, never, params, use_boost=False)
    assert torch.equal(no_boost.alpha, torch.zeros(2)) and no_boost.cand.shape == cand.shape
    first = elect(cand, R_hat, B, S, M, _log_alpha, params, use_elect=False)
    assert torch.equal(first.elected, torch.zeros(2, dtype=torch.long))
    assert torch.equal(first.chosen, cand[:, 0])
    assert first.scores.shape == (2, 4)  # still scored, R̂ included
