"""Resource bounds: the midpoint cache never holds more than its byte budget (also under threads),
and 1,000 requests do not grow the process's memory.

The memory test runs the cheapest request (32×32, ``mode="diffusion", candidates=0``: one AttUnet
pass, ~50 ms) so that 1,000 of them fit in CI time; it measures the resident set after a warm-up
of 100 requests and after 900 more.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import psutil
import pytest
import torch

from wifidiff_fast import RadioMapEstimator
from wifidiff_fast.pipeline.cache import MidpointCache

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cache_stays_within_its_budget_under_concurrent_puts():
    budget = 3 * 2**20
    cache = MidpointCache(budget)
    over = []

    def writer(t):
        rng = np.random.default_rng(t)
        for k in range(200):
            side = int(rng.integers(8, 400))  # up to 320 kB per entry in fp16, some larger than others
            cache.put(f"{t}-{k}", torch.zeros(1, side, side))
            if cache.nbytes > budget:
                over.append(cache.nbytes)
            cache.get(f"{t}-{k // 2}")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not over
    held = sum(v.numel() * v.element_size() for v in cache._entries.values())
    assert held == cache.nbytes <= budget and len(cache) > 0
    cache.put("huge", torch.zeros(4, 1024, 1024))  # 8 MB > budget: not kept in memory
    assert cache.get("huge") is None and cache.nbytes <= budget


def test_estimator_cache_respects_a_small_budget():
    budget = 64 * 1024  # each entry: K = 2 midpoints of 32×32 in fp16 = 4 kB
    est = RadioMapEstimator.from_pretrained("small", cache_bytes=budget)
    rng = np.random.default_rng(0)
    for k in range(30):
        b = (rng.random((32, 32)) < 0.1).astype(np.uint8)
        free = np.argwhere(b == 0)[:3]
        est.estimate(
            b,
            np.column_stack([free, [-60.0, -70.0, -80.0]]),
            mode="diffusion",
            candidates=2,
            steps=2,
            reuse=0.5,
            seed=k % 2,
        )
        assert est.cache.nbytes <= budget
    assert len(est.cache) == budget // (2 * 32 * 32 * 2)  # full, and evicting


@pytest.mark.slow
def test_a_thousand_requests_do_not_grow_memory():
    est = RadioMapEstimator.from_pretrained("small")
    rng = np.random.default_rng(1)
    items = []
    for _ in range(10):
        b = (rng.random((32, 32)) < 0.15).astype(np.uint8)
        free = np.argwhere(b == 0)
        pick = free[rng.choice(len(free), 5, replace=False)]
        items.append((b, np.column_stack([pick, rng.uniform(-100, -40, 5)])))
    proc = psutil.Process()

    def run(n, start):
        for k in range(start, start + n):
            est.estimate(*items[k % len(items)], mode="diffusion", candidates=0, seed=k)
        gc.collect()
        return proc.memory_info().rss

    warm = run(100, 0)
    after = run(900, 100)
    growth_mb = (after - warm) / 2**20
    # a leak of one 32×32 float32 map per request would be 3.5 MB over 900 requests; one map set
    # (rss, σ, R̂ and inputs) per request well over 10 MB
    assert growth_mb < 8.0, f"resident memory grew {growth_mb:.1f} MB over 900 requests"
