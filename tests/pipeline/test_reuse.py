"""Midpoint reuse: R = 0 is plain sampling, R > 0 is the documented two-stage run, cache hits are
exact; the MidpointCache itself (bytes-bounded LRU, thread-safe, persistent)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from wifidiff_fast.models.features import Condition
from wifidiff_fast.pipeline.cache import MidpointCache, midpoint_key
from wifidiff_fast.pipeline.generate import _stream_seed, initial_noise, make_eps_fn, reuse_steps
from wifidiff_fast.reference.ddim_step import ddim_step_ref
from wifidiff_fast.sampling.ddim import ddim_sample
from wifidiff_fast.sampling.schedules import ddim_table

from pipecases import estimator, layout, samples_for

K, STEPS = 3, 4

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def scene():
    b = layout(48, 48, seed=11)
    return b, samples_for(b, 10, seed=12)


def _spy(est, monkeypatch):
    """Record the inputs and the output of every ``Generator.generate`` call."""
    calls = []
    real = est.generator.generate

    def spy(cond, layouts, sampler, known_write=False, callback=None):
        assert not known_write, "_manual below writes out the generation without the known-sample write"
        out = real(cond, layouts, sampler, callback=callback)
        calls.append(
            dict(
                B=cond.B,
                S_prime=cond.S_prime,
                M_prime=cond.M_prime,
                R_hat=cond.R_hat,
                K=sampler.candidates,
                steps=sampler.steps,
                R=sampler.reuse,
                eta=sampler.eta,
                seed=sampler.seed,
                has_boost=cond.has_boost,
                out=out,
            )
        )
        return out

    monkeypatch.setattr(est.generator, "generate", spy)
    return calls


def _manual(est, call, reuse_fp16=True):
    """The generation block written out by hand: seeded x_T, (static-only stage 1, fp16 midpoint),
    then the full condition; no cache."""
    K_, steps, R, eta, seed = call["K"], call["steps"], call["R"], call["eta"], call["seed"]
    n, H, W = call["B"].shape
    assert n == 1
    table, ts = ddim_table(est.scheduler, steps, eta)

    def rep(z):
        return z.repeat_interleave(K_, 0)

    x = initial_noise(K_, (H, W), seed, "cpu")[0]

    def noise_fn(i):
        g = torch.Generator().manual_seed(_stream_seed(seed, 1 + i))
        return torch.randn((K_, H, W), generator=g)

    clip = dict(
        clip_sample=est.scheduler.clip_sample,
        clip_range=est.scheduler.clip_sample_range,
        step_fn=ddim_step_ref,
        noise_fn=noise_fn if eta > 0 else None,
    )
    m = reuse_steps(R, steps)
    pt = est.scheduler.prediction_type
    if m > 0:
        zeros = torch.zeros_like(rep(call["B"]))
        static = Condition(rep(call["B"]), zeros, zeros, zeros, 0.0, 0.0)
        eps1 = make_eps_fn(est.nets.denoiser, table, ts, static, pt, est.chunk)
        x, _ = ddim_sample(eps1, x, table, 0, m, **clip)
        if reuse_fp16:
            x = x.half().float()
    full = Condition(
        rep(call["B"]), rep(call["S_prime"]), rep(call["M_prime"]), rep(call["R_hat"]), 1.0, call["has_boost"]
    )
    eps2 = make_eps_fn(est.nets.denoiser, table, ts, full, pt, est.chunk)
    x, _ = ddim_sample(eps2, x, table, m, steps, **clip)
    return x.clamp(-1, 1).view(1, K_, H, W)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_reuse_zero_is_exactly_plain_sampling(tiny_ckpt, scene, monkeypatch, eta):
    b, s = scene
    est = estimator(tiny_ckpt)
    calls = _spy(est, monkeypatch)
    est.estimate(b, s, candidates=K, steps=STEPS, reuse=0.0, seed=3, eta=eta)
    (call,) = calls
    assert torch.equal(call["out"], _manual(est, call))
    assert len(est.cache) == 0 and est.cache.hits == 0 and est.cache.misses == 0  # the cache is not used


@pytest.mark.parametrize("reuse,eta", [(0.5, 0.0), (0.75, 0.4)])
def test_reuse_is_the_two_stage_run(tiny_ckpt, scene, monkeypatch, reuse, eta):
    b, s = scene
    est = estimator(tiny_ckpt)
    calls = _spy(est, monkeypatch)
    est.estimate(b, s, candidates=K, steps=STEPS, reuse=reuse, seed=3, eta=eta)
    (call,) = calls
    assert reuse_steps(reuse, STEPS) > 0
    assert torch.equal(call["out"], _manual(est, call))
    # and it is not plain sampling: stage 1 ran under the static-only condition
    plain = _manual(est, dict(call, R=0.0))
    assert (call["out"] - plain).abs().max() > 1e-3


def test_second_call_on_the_same_layout_is_an_exact_cache_hit(tiny_ckpt, scene):
    b, s = scene
    est = estimator(tiny_ckpt)
    kw = dict(candidates=K, steps=STEPS, reuse=0.5, seed=1, return_candidates=True)
    first = est.estimate(b, s, **kw)
    assert (est.cache.hits, est.cache.misses, len(est.cache)) == (0, 1, 1)
    second = est.estimate(b, s, **kw)
    assert (est.cache.hits, est.cache.misses) == (1, 1)
    np.testing.assert_array_equal(first.candidates_dbm, second.candidates_dbm)
    np.testing.assert_array_equal(first.rss_dbm, second.rss_dbm)
    assert first.elected == second.elected
    # other samples on the same layout: still a hit (stage 1 depends on the layout only)
    est.estimate(b, samples_for(b, 5, seed=99), **kw)
    assert (est.cache.hits, est.cache.misses) == (2, 1)
    # another seed or another reuse ratio: a miss
    est.estimate(b, s, **dict(kw, seed=2))
    est.estimate(b, s, **dict(kw, reuse=0.25))
    assert (est.cache.hits, est.cache.misses, len(est.cache)) == (2, 3, 3)
    # after clearing the cache: a miss, and the very same result
    est.cache.clear()
    assert len(est.cache) == 0 and est.cache.nbytes == 0
    third = est.estimate(b, s, **kw)
    np.testing.assert_array_equal(first.candidates_dbm, third.candidates_dbm)
    assert est.cache.misses == 4


def test_persistent_cache_survives_a_restart(tiny_ckpt, scene, tmp_path):
    b, s = scene
    kw = dict(candidates=K, steps=STEPS, reuse=0.5, seed=1, return_candidates=True)
    first = estimator(tiny_ckpt, cache_dir=tmp_path).estimate(b, s, **kw)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    est = estimator(tiny_ckpt, cache_dir=tmp_path)  # "restarted service"
    second = est.estimate(b, s, **kw)
    assert est.cache.hits == 1 and est.cache.misses == 0
    np.testing.assert_array_equal(first.candidates_dbm, second.candidates_dbm)


def test_midpoint_key_depends_on_every_input():
    b = layout(32, 32, seed=0)
    base = dict(buildings=b, model_id="abc", sampler={"K": 4, "steps": 10}, seed=0, stage1_steps=5)
    key = midpoint_key(**base)
    assert key == midpoint_key(**dict(base, buildings=b.astype(bool)))  # dtype does not matter
    b2 = b.copy()
    b2[5, 5] ^= 1
    others = [
        dict(buildings=b2),
        dict(buildings=b.reshape(16, 64)),
        dict(model_id="abd"),
        dict(sampler={"K": 4, "steps": 11}),
        dict(seed=1),
        dict(stage1_steps=6),
    ]
    for change in others:
        assert midpoint_key(**dict(base, **change)) != key, change


# ---------------------------------------------------------------------------- MidpointCache
def _t(value: float, numel: int = 32) -> torch.Tensor:
    return torch.full((2, numel // 2), value)


def test_cache_stores_fp16_on_cpu():
    cache = MidpointCache(max_bytes=1000)
    stored = cache.put("a", torch.randn(2, 4, 4, dtype=torch.float64))
    assert stored.dtype == torch.float16 and stored.device.type == "cpu"
    assert cache.get("a") is stored and cache.nbytes == 2 * 4 * 4 * 2


def test_cache_evicts_least_recently_used_by_bytes():
    cache = MidpointCache(max_bytes=3 * 64)  # three 32-element fp16 entries
    for k in "abc":
        cache.put(k, _t(1.0))
    assert len(cache) == 3 and cache.nbytes == 192
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", _t(2.0))  # evicts b, the least recently used
    assert cache.get("b") is None
    assert all(cache.get(k) is not None for k in "acd")
    cache.put("e", _t(3.0, numel=64))  # 128 bytes: evicts the two oldest (a, c)
    assert cache.get("a") is None and cache.get("c") is None
    assert cache.get("d") is not None and cache.get("e") is not None
    assert cache.nbytes == 64 + 128 and len(cache) == 2
    cache.put("d", _t(4.0, numel=64))  # replacing d (64 → 128 bytes) re-counts it and evicts e
    assert cache.nbytes == 128 and len(cache) == 1 and cache.get("e") is None
    assert torch.equal(cache.get("d"), _t(4.0, numel=64).half())
    assert cache.nbytes == sum(v.numel() * v.element_size() for v in cache._entries.values())


def test_cache_entry_larger_than_the_cache_is_not_kept():
    cache = MidpointCache(max_bytes=100)
    cache.put("small", _t(1.0))
    big = cache.put("big", _t(1.0, numel=1000))
    assert big.dtype == torch.float16  # returned to the caller anyway
    assert cache.get("big") is None and cache.get("small") is not None and cache.nbytes == 64
    zero = MidpointCache(max_bytes=0)
    zero.put("a", _t(1.0))
    assert len(zero) == 0 and zero.nbytes == 0


def test_cache_refuses_negative_size():
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        MidpointCache(max_bytes=-1)


def test_cache_hit_and_miss_counters():
    cache = MidpointCache()
    assert cache.get("x") is None
    cache.put("x", _t(1.0))
    cache.get("x")
    cache.get("x")
    assert (cache.hits, cache.misses) == (2, 1)


def test_cache_is_thread_safe():
    cache = MidpointCache(max_bytes=20 * 64)
    errors = []
    barrier = threading.Barrier(6)

    def worker(tid):
        try:
            rng = np.random.default_rng(tid)
            barrier.wait(timeout=30)
            for i in range(400):
                key = f"k{rng.integers(40)}"
                if rng.random() < 0.5:
                    cache.put(key, _t(float(tid), numel=int(rng.choice([32, 64]))))
                else:
                    v = cache.get(key)
                    assert v is None or v.dtype == torch.float16
                if i % 50 == 0:
                    assert cache.nbytes <= cache.max_bytes
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert cache.nbytes == sum(v.numel() * v.element_size() for v in cache._entries.values())
    assert 0 < cache.nbytes <= cache.max_bytes
    assert cache.hits + cache.misses > 0


def test_cache_persist_dir_round_trip(tmp_path):
    a = MidpointCache(max_bytes=1 << 20, persist_dir=tmp_path / "mid")
    value = torch.randn(3, 8, 8)
    stored = a.put("key1", value)
    assert (tmp_path / "mid" / "key1.safetensors").is_file()
    b = MidpointCache(max_bytes=1 << 20, persist_dir=tmp_path / "mid")
    got = b.get("key1")
    assert got is not None and torch.equal(got, stored) and torch.equal(got, value.half())
    assert (b.hits, b.misses, len(b)) == (1, 0, 1)  # read back into memory
    assert b.get("other") is None and b.misses == 1
    # an entry too large for the memory budget is still served from disk
    tiny = MidpointCache(max_bytes=10, persist_dir=tmp_path / "mid")
    assert torch.equal(tiny.get("key1"), stored) and len(tiny) == 0
