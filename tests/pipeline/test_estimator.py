"""RadioMapEstimator end to end on a tiny random-weight checkpoint (fast), plus the shipped one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from wifidiff_fast.data.units import model_to_dbm
from wifidiff_fast.pipeline.estimator import MIN_SIZE, EstimateResult, RadioMapEstimator

from pipecases import estimator, layout, samples_for

K, STEPS = 3, 3

pytestmark = pytest.mark.usefixtures("one_thread")


def _same(a: EstimateResult, b: EstimateResult) -> None:
    """Bit-identical results (NaN on buildings compare equal)."""
    np.testing.assert_array_equal(a.rss_dbm, b.rss_dbm)
    np.testing.assert_array_equal(a.uncertainty_db, b.uncertainty_db)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.R_hat_dbm, b.R_hat_dbm)
    np.testing.assert_array_equal(a.critical_points, b.critical_points)
    assert a.elected == b.elected
    assert a.alpha == b.alpha or (np.isnan(a.alpha) and np.isnan(b.alpha))
    if a.candidates_dbm is not None or b.candidates_dbm is not None:
        np.testing.assert_array_equal(a.candidates_dbm, b.candidates_dbm)


def _close(a: EstimateResult, b: EstimateResult, atol_db: float = 1e-2) -> None:
    """Equal up to float round-off (another batch composition changes summation order)."""
    np.testing.assert_allclose(a.rss_dbm, b.rss_dbm, rtol=0, atol=atol_db)
    np.testing.assert_allclose(a.R_hat_dbm, b.R_hat_dbm, rtol=0, atol=atol_db)
    np.testing.assert_allclose(a.uncertainty_db, b.uncertainty_db, rtol=0, atol=atol_db)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(a.critical_points, b.critical_points)
    assert a.elected == b.elected


@pytest.fixture
def scene():
    b = layout(48, 48, seed=1)
    return b, samples_for(b, 12, seed=2)


# ---------------------------------------------------------------------------- outputs
def test_result_fields(tiny_ckpt, scene):
    b, s = scene
    res = estimator(tiny_ckpt).estimate(b, s, candidates=K, steps=STEPS, seed=0, return_candidates=True)
    assert res.rss_dbm.shape == res.uncertainty_db.shape == res.R_hat_dbm.shape == b.shape
    assert res.rss_dbm.dtype == np.float32 and res.uncertainty_db.dtype == np.float32
    assert res.scores.shape == (K + 1,)  # the boost map joins the election as candidate K
    assert res.candidates_dbm.shape == (K + 1, *b.shape)
    assert 0 <= res.elected <= K and res.elected == int(np.argmin(res.scores))
    assert np.isfinite(res.alpha) and res.alpha > 0
    assert res.critical_points.ndim == 2 and res.critical_points.shape[1] == 2
    assert (b[res.critical_points[:, 0], res.critical_points[:, 1]] == 0).all()
    assert {"boost", "critical_points", "generation", "election", "total"} <= set(res.timings_ms)
    # the boost map is the last candidate and R_hat_dbm
    np.testing.assert_allclose(res.candidates_dbm[K], res.R_hat_dbm, rtol=0, atol=1e-4)


def test_nan_exactly_on_buildings(tiny_ckpt, scene):
    b, s = scene
    res = estimator(tiny_ckpt).estimate(b, s, candidates=K, steps=STEPS, seed=0, return_candidates=True)
    for arr in (res.rss_dbm, res.uncertainty_db, res.R_hat_dbm):
        assert np.array_equal(np.isnan(arr), b == 1)
    assert np.array_equal(np.isnan(res.candidates_dbm), np.broadcast_to(b == 1, res.candidates_dbm.shape))
    assert (res.uncertainty_db[b == 0] >= 0).all()
    assert (res.rss_dbm[b == 0] >= -130.0 - 1e-3).all() and (res.rss_dbm[b == 0] <= -10.0 + 1e-3).all()


def test_measured_samples_are_written_exactly(tiny_ckpt, scene):
    b, s = scene
    res = estimator(tiny_ckpt).estimate(b, s, candidates=K, steps=STEPS, seed=0)
    rows, cols = s[:, 0].astype(int), s[:, 1].astype(int)
    np.testing.assert_array_equal(res.rss_dbm[rows, cols], s[:, 2].astype(np.float32))
    # a pixel measured twice gets the mean of its two readings
    dup = np.vstack([s, [s[0, 0], s[0, 1], s[0, 2] + 10.0]])
    res2 = estimator(tiny_ckpt).estimate(b, dup, candidates=K, steps=STEPS, seed=0)
    assert res2.rss_dbm[rows[0], cols[0]] == np.float32(s[0, 2] + 5.0)


def test_deterministic_for_a_seed(tiny_ckpt, scene):
    b, s = scene
    est = estimator(tiny_ckpt)
    a = est.estimate(b, s, candidates=K, steps=STEPS, seed=7, eta=0.5, return_candidates=True)
    c = est.estimate(b, s, candidates=K, steps=STEPS, seed=7, eta=0.5, return_candidates=True)
    _same(a, c)
    _same(
        a,
        estimator(tiny_ckpt).estimate(
            b, s, candidates=K, steps=STEPS, seed=7, eta=0.5, return_candidates=True
        ),
    )  # a fresh estimator too


def test_different_seeds_differ(tiny_ckpt_pure, scene):
    b, s = scene
    est = estimator(tiny_ckpt_pure)
    a = est.estimate(b, s, candidates=K, steps=STEPS, seed=0, return_candidates=True)
    c = est.estimate(b, s, candidates=K, steps=STEPS, seed=1, return_candidates=True)
    assert a.candidates_dbm.shape == (K, *b.shape)  # boost_candidate disabled: diffusion only
    assert a.scores.shape == (K,) and 0 <= a.elected < K
    open_ = b == 0
    assert np.abs(a.candidates_dbm[:, open_] - c.candidates_dbm[:, open_]).max() > 0.1
    assert np.abs(a.rss_dbm[open_] - c.rss_dbm[open_]).max() > 0.1  # a diffusion candidate is elected
    # the candidates of one seed differ from each other (independent noise per candidate)
    assert np.abs(a.candidates_dbm[0][open_] - a.candidates_dbm[1][open_]).max() > 0.1
    assert np.nanmax(a.uncertainty_db) > 0


def test_candidates_zero_returns_the_boost_map(tiny_ckpt, scene):
    b, s = scene
    est = estimator(tiny_ckpt)
    res = est.estimate(b, s, candidates=0, seed=0)
    full = est.estimate(b, s, candidates=K, steps=STEPS, seed=0)
    assert res.elected == -1 and res.scores.shape == (0,) and np.isnan(res.alpha)
    assert "generation" not in res.timings_ms and "election" not in res.timings_ms
    rows, cols = s[:, 0].astype(int), s[:, 1].astype(int)
    expect = res.R_hat_dbm.copy()
    expect[rows, cols] = s[:, 2]
    np.testing.assert_allclose(res.rss_dbm, expect, rtol=0, atol=1e-4)  # R_hat_dbm goes through fp32
    np.testing.assert_array_equal(res.rss_dbm[rows, cols], s[:, 2].astype(np.float32))
    np.testing.assert_array_equal(res.R_hat_dbm, full.R_hat_dbm)  # the same boost block as a full run
    np.testing.assert_array_equal(res.critical_points, full.critical_points)
    with pytest.raises(ValueError, match="candidates=0 returns the boost map, so it needs boost=True"):
        est.estimate(b, s, candidates=0, boost=False)


def test_tta_per_call_picks_one_pass_or_the_symmetry_mean(tiny_ckpt, scene):
    """The tiny checkpoint (the shipped sections) averages 8 symmetries; ``tta=False`` is one pass."""
    from wifidiff_fast.data.protocol import rasterise
    from wifidiff_fast.data.units import model_to_dbm
    from wifidiff_fast.pipeline.boost import rough_map

    b, s = scene
    est = estimator(tiny_ckpt)
    assert est.boost_params.tta
    default = est.estimate(b, s, candidates=0, seed=0)
    once = est.estimate(b, s, candidates=0, seed=0, tta=False)
    np.testing.assert_array_equal(
        default.R_hat_dbm, est.estimate(b, s, candidates=0, seed=0, tta=True).R_hat_dbm
    )
    S, M = rasterise(s, b.shape, est.p_min, est.p_max)
    with torch.no_grad():
        plain = rough_map(est.runners.boost, torch.from_numpy(b).float()[None], S[None], M[None])[0]
    expect = model_to_dbm(plain.numpy(), est.p_min, est.p_max)
    open_ = b == 0
    np.testing.assert_allclose(once.R_hat_dbm[open_], expect[open_], atol=1e-3)
    assert np.abs(once.R_hat_dbm[open_] - default.R_hat_dbm[open_]).max() > 1e-3
    with pytest.raises(ValueError, match="tta= is used by mode='diffusion' only"):
        est.estimate(b, s, mode="physics", tta=False)


def test_without_boost_and_without_election(tiny_ckpt_pure, scene):
    b, s = scene
    est = estimator(tiny_ckpt_pure)
    res = est.estimate(b, s, candidates=K, steps=STEPS, seed=0, boost=False, return_candidates=True)
    assert res.critical_points.shape == (0, 2) and res.alpha == 0.0
    first = est.estimate(b, s, candidates=K, steps=STEPS, seed=0, elect=False, return_candidates=True)
    assert first.elected == 0
    open_ = b == 0
    expect = first.candidates_dbm[0].copy()
    rows, cols = s[:, 0].astype(int), s[:, 1].astype(int)
    expect[rows, cols] = s[:, 2]
    np.testing.assert_allclose(first.rss_dbm[open_], expect[open_], rtol=0, atol=1e-4)


def test_estimate_batch_equals_separate_calls(tiny_ckpt, scene):
    """Three maps, two grid sizes: each result is the one a separate call gives."""
    b1, s1 = scene
    b2 = layout(48, 48, seed=5)
    s2 = samples_for(b2, 20, seed=6)
    b3 = layout(40, 56, seed=7)
    s3 = samples_for(b3, 8, seed=8)
    est = estimator(tiny_ckpt)
    kw = dict(candidates=K, steps=STEPS, seed=3, eta=0.3, reuse=0.4)
    batch = est.estimate_batch([(b1, s1), (b2, s2), (b3, s3)], **kw)
    assert [r.rss_dbm.shape for r in batch] == [(48, 48), (48, 48), (40, 56)]
    for (b, s), got in zip([(b1, s1), (b2, s2), (b3, s3)], batch):
        _close(estimator(tiny_ckpt).estimate(b, s, **kw), got)
    with pytest.raises(ValueError, match="at least one"):
        est.estimate_batch([])


# ---------------------------------------------------------------------------- election
def test_election_picks_the_planted_candidate(tiny_ckpt_pure, scene, monkeypatch):
    """Stub the generation: candidate 2 agrees with the samples and R̂, the others are offset."""
    b, s = scene
    est = estimator(tiny_ckpt_pure)
    planted_idx, offsets = 2, [0.15, -0.1, 0.0, 0.25]
    seen = {}

    def fake_generate(cond, layouts, sampler, known_write=False, callback=None):
        # S′ holds the real samples where M′ marks them (R̂'s own values at the boost points)
        planted = torch.where(cond.M_prime > 0, cond.S_prime, cond.R_hat)
        seen["planted"] = planted
        return torch.stack([planted + o for o in offsets], dim=1)

    monkeypatch.setattr(est.generator, "generate", fake_generate)
    res = est.estimate(b, s, candidates=len(offsets), steps=STEPS, seed=0)
    assert res.elected == planted_idx
    assert res.scores[planted_idx] < np.delete(res.scores, planted_idx).min()
    expect = model_to_dbm(seen["planted"][0].numpy().astype(np.float64), -130.0, -10.0)
    open_ = b == 0
    np.testing.assert_allclose(res.rss_dbm[open_], expect[open_], rtol=0, atol=1e-3)


# ---------------------------------------------------------------------------- known-sample write
def test_known_write_steers_every_step_but_the_last(tiny_ckpt_pure, scene, monkeypatch):
    """Stage-2 steps 0..S−2 write S′ into x̂0 at M′ (fused in ddim_step); stage 1 and the last
    step do not, so the election's sample error still compares the network's own predictions."""
    from wifidiff_fast import ops
    from wifidiff_fast.pipeline import estimator as estimator_module

    b, s = scene
    est = estimator(tiny_ckpt_pure)
    steps, reuse = 4, 0.25  # one static-only step, then three stage-2 steps
    calls = []
    real_step = ops.ddim_step

    def spy(x_t, eps, table, i, **kw):
        out = real_step(x_t, eps, table, i, **kw)
        calls.append((i, kw.get("known"), kw.get("known_mask"), out[1]))
        return out

    monkeypatch.setattr(estimator_module.ops, "ddim_step", spy)
    kw = dict(candidates=K, steps=steps, reuse=reuse, seed=5, return_candidates=True)
    steered = est.estimate(b, s, known_write=True, **kw)
    assert [(i, known is not None) for i, known, _, _ in calls] == [
        (0, False),
        (1, True),
        (2, True),
        (3, False),
    ]
    for _, known, mask, x0 in calls[1:3]:
        write = (mask != 0).repeat_interleave(K, 0)
        assert write.any()
        assert torch.equal(x0[write], known.repeat_interleave(K, 0)[write])
    calls.clear()
    plain = est.estimate(b, s, known_write=False, **kw)
    assert all(known is None for _, known, _, _ in calls)
    open_ = b == 0
    assert np.abs(steered.candidates_dbm[:, open_] - plain.candidates_dbm[:, open_]).max() > 0.01
    _same(plain, est.estimate(b, s, **kw))  # off is the default of this checkpoint


def test_known_write_default_comes_from_the_config(tmp_path, scene):
    from pipecases import write_tiny_checkpoint

    b, s = scene
    on = estimator(write_tiny_checkpoint(tmp_path / "on", known_sample_write=True))
    kw = dict(candidates=K, steps=STEPS, seed=2, return_candidates=True)
    _same(on.estimate(b, s, **kw), on.estimate(b, s, known_write=True, **kw))
    off = on.estimate(b, s, known_write=False, **kw)
    assert np.abs(off.candidates_dbm - on.estimate(b, s, **kw).candidates_dbm)[:, b == 0].max() > 0.01


# ---------------------------------------------------------------------------- threads
def test_thread_safety_matches_sequential_calls(tiny_ckpt, scene):
    b, s = scene
    kw = dict(candidates=K, steps=STEPS, reuse=0.5)
    seq_est = estimator(tiny_ckpt)
    seeds = [0, 1, 0, 2, 1, 3, 0, 2]
    sequential = {sd: seq_est.estimate(b, s, seed=sd, **kw) for sd in set(seeds)}
    est = estimator(tiny_ckpt)  # a fresh cache: the threads race on misses and hits
    barrier = threading.Barrier(4)

    def call(sd):
        barrier.wait(timeout=60)
        return est.estimate(b, s, seed=sd, **kw)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, seeds))
    for sd, res in zip(seeds, results):
        _same(sequential[sd], res)
    assert est.cache.hits + est.cache.misses == len(seeds)
    assert len(est.cache) == 4


# ---------------------------------------------------------------------------- bad inputs
def _bad_cases():
    b = layout(48, 48, seed=1)
    s = samples_for(b, 6, seed=2)
    on_building = np.argwhere(b == 1)[0]
    nan_s = s.copy()
    nan_s[1, 2] = np.nan
    return [
        ("buildings 3-D", dict(buildings=b[None]), ValueError, "2-D"),
        ("buildings non-binary", dict(buildings=b * 2), ValueError, "binary"),
        ("buildings strings", dict(buildings="layout"), TypeError, "must be an array"),
        ("buildings all", dict(buildings=np.ones_like(b)), ValueError, "no open pixel"),
        ("samples shape", dict(samples=s[:, :2]), ValueError, r"\[N, 3\]"),
        ("samples empty", dict(samples=np.zeros((0, 3))), ValueError, "empty"),
        (
            "samples outside",
            dict(samples=np.vstack([s, [48, 3, -50.0]])),
            ValueError,
            "outside the 48x48 grid",
        ),
        ("samples negative", dict(samples=np.vstack([s, [-1, 3, -50.0]])), ValueError, "outside"),
        ("samples on building", dict(samples=np.vstack([s, [*on_building, -50.0]])), ValueError, "building"),
        ("samples NaN", dict(samples=nan_s), ValueError, "NaN"),
        ("samples fractional", dict(samples=np.vstack([s, [1.5, 3, -50.0]])), ValueError, "integer"),
        ("samples not dBm", dict(samples=np.vstack([s, [1, 3, 5000.0]])), ValueError, "dBm"),
        (
            "grid too small",
            dict(buildings=np.zeros((31, 64), np.uint8), samples=np.array([[1, 1, -50.0]])),
            ValueError,
            f"at least {MIN_SIZE}x{MIN_SIZE}",
        ),
        ("candidates negative", dict(candidates=-1), ValueError, "candidates must be in 0..1024"),
        ("candidates huge", dict(candidates=1025), ValueError, "candidates must be in"),
        ("steps zero", dict(steps=0), ValueError, "steps must be in 1..1000"),
        ("steps huge", dict(steps=1001), ValueError, "steps must be in"),
        ("reuse one", dict(reuse=1.0), ValueError, r"reuse must be in \[0, 1\)"),
        ("reuse negative", dict(reuse=-0.1), ValueError, "reuse must be in"),
        ("eta big", dict(eta=1.5), ValueError, r"eta must be in \[0, 1\]"),
        ("eta negative", dict(eta=-0.01), ValueError, "eta must be in"),
        ("seed negative", dict(seed=-1), ValueError, r"seed must be in \[0, 2\*\*63\)"),
        ("seed huge", dict(seed=2**63), ValueError, "seed must be in"),
        ("seed float", dict(seed=1.5), TypeError, "seed must be an integer, got float"),
        ("seed bool", dict(seed=True), TypeError, "seed must be an integer"),
        ("candidates float", dict(candidates=2.5), TypeError, "candidates must be an integer, got float"),
        ("candidates str", dict(candidates="4"), TypeError, "candidates must be an integer, got str"),
        ("steps float", dict(steps=2.0), TypeError, "steps must be an integer"),
        ("reuse str", dict(reuse="0.5"), TypeError, "reuse must be a number"),
        ("eta nan", dict(eta=float("nan")), ValueError, "eta must be finite"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_inputs_raise_helpful_errors(tiny_ckpt, case):
    _, kw, exc, match = case
    b = layout(48, 48, seed=1)
    args = dict(buildings=b, samples=samples_for(b, 6, seed=2), candidates=2, steps=2, seed=0)
    args.update(kw)
    est = estimator(tiny_ckpt)
    with pytest.raises(exc, match=match):
        est.estimate(**args)


def test_bad_batch_items(tiny_ckpt, scene):
    est = estimator(tiny_ckpt)
    with pytest.raises(TypeError, match="item 1 must be a .buildings, samples. pair"):
        est.estimate_batch([scene, (scene[0],)], candidates=1, steps=1)


def test_bad_construction(tiny_ckpt):
    with pytest.raises(ValueError, match="backend must be one of .*got 'cobol'"):
        estimator(tiny_ckpt, backend="cobol")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda"):
        estimator(tiny_ckpt, device="foo")
    with pytest.raises(ValueError, match="backend 'cuda' does not run on device cpu"):
        estimator(tiny_ckpt, backend="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but this torch sees no CUDA"):
            RadioMapEstimator.from_pretrained(tiny_ckpt, device="cuda")


def test_sampler_defaults_come_from_the_config(tiny_ckpt, scene):
    b, s = scene
    res = estimator(tiny_ckpt).estimate(b, s, seed=0)
    assert res.scores.shape == (3 + 1,)  # tiny_config: candidates 3 (+ the boost map)


# ---------------------------------------------------------------------------- backends
def test_native_backend_agrees_with_reference(tiny_ckpt, scene):
    from wifidiff_fast.ops import backend as ops_backend

    av = ops_backend.availability("cpp", "cpu")
    if not av.ok:
        pytest.skip(f"cpp backend unavailable: {av.reason.splitlines()[0][:200]}")
    b, s = scene
    kw = dict(candidates=K, steps=STEPS, seed=4, eta=0.2, return_candidates=True)
    ref = estimator(tiny_ckpt, backend="reference").estimate(b, s, **kw)
    cpp = estimator(tiny_ckpt, backend="cpp").estimate(b, s, **kw)
    np.testing.assert_allclose(cpp.candidates_dbm, ref.candidates_dbm, rtol=0, atol=1e-2)
    np.testing.assert_allclose(cpp.scores, ref.scores, rtol=1e-4, atol=1e-5)
    assert cpp.elected == ref.elected
    np.testing.assert_array_equal(cpp.critical_points, ref.critical_points)
