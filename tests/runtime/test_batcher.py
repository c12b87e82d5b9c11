"""The micro-batcher: concurrent estimate() calls coalesce into batches and equal unbatched calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from rtcases import layout, samples, write_tiny_checkpoint

from wifidiff_fast.pipeline.estimator import RadioMapEstimator
from wifidiff_fast.runtime.batcher import MicroBatcher

pytestmark = pytest.mark.usefixtures("one_thread")
OPTS = dict(mode="diffusion", candidates=3, steps=2, seed=5)


@pytest.fixture(scope="module")
def est(tmp_path_factory):
    return RadioMapEstimator.from_pretrained(
        write_tiny_checkpoint(tmp_path_factory.mktemp("ck")), backend="reference", progress=False
    )


def maps(n):
    return [(layout(i), samples(layout(i), 12, 100 + i)) for i in range(n)]


def test_concurrent_calls_are_batched_and_equal_unbatched(est):
    items = maps(6)
    expected = [est.estimate(b, s, **OPTS) for b, s in items]
    results = [None] * len(items)
    start = threading.Barrier(len(items))
    with MicroBatcher(est, window_ms=300, max_batch=8) as batcher:

        def worker(i):
            start.wait()
            results[i] = batcher.estimate(*items[i], **OPTS)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(items))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert batcher.requests == len(items)
    assert batcher.batches < len(items)  # some requests shared a batch
    for got, want in zip(results, expected):
        assert got.elected == want.elected
        np.testing.assert_allclose(got.rss_dbm, want.rss_dbm, rtol=0, atol=1e-3)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.critical_points, want.critical_points)


def test_different_options_never_share_a_batch(est):
    (b0, s0), (b1, s1) = maps(2)
    with MicroBatcher(est, window_ms=200) as batcher:
        f0 = batcher.submit(b0, s0, **OPTS)
        f1 = batcher.submit(b1, s1, **{**OPTS, "seed": 6})
        r0, r1 = f0.result(), f1.result()
    assert batcher.batches == 2
    assert r1.elected == est.estimate(b1, s1, **{**OPTS, "seed": 6}).elected
    np.testing.assert_allclose(r0.rss_dbm, est.estimate(b0, s0, **OPTS).rss_dbm, rtol=0, atol=1e-3)


def test_a_bad_map_fails_only_its_own_caller(est):
    (b0, s0), (b1, _) = maps(2)
    bad = np.array([[0, 0, -50.0], [b1.shape[0] + 5, 0, -50.0]])  # a sample outside the grid
    with MicroBatcher(est, window_ms=200) as batcher:
        good, broken = batcher.submit(b0, s0, **OPTS), batcher.submit(b1, bad, **OPTS)
        assert good.result().rss_dbm.shape == b0.shape
        with pytest.raises(ValueError):
            broken.result()


def test_bad_settings_are_value_errors(est):
    with pytest.raises(ValueError, match="window_ms"):
        MicroBatcher(est, window_ms=-1)
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(est, max_batch=0)


def test_maps_of_two_grid_sizes_are_served_in_separate_batches(est):
    small = layout(7, 40, 40)
    items = maps(2) + [(small, samples(small, 12, 9))]
    with MicroBatcher(est, window_ms=200) as batcher:
        futures = [batcher.submit(b, s, **OPTS) for b, s in items]
        results = [f.result(timeout=120) for f in futures]
    assert batcher.batches == 2 and [r.rss_dbm.shape for r in results] == [b.shape for b, _ in items]


def test_a_failure_outside_the_estimator_still_answers_every_caller(est, monkeypatch):
    ((b0, s0),) = maps(1)
    with MicroBatcher(est, window_ms=0) as batcher:

        def broken(batch):
            raise RuntimeError("worker bug")

        monkeypatch.setattr(batcher, "_serve", broken)
        with pytest.raises(RuntimeError, match="worker bug"):
            batcher.submit(b0, s0, **OPTS).result(timeout=60)
