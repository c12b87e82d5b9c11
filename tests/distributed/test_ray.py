"""Ray: tiles and many-map jobs over actors give the local results bit for bit (also when an actor
dies mid-run and its job is retried), and the Serve deployment batches concurrent requests.

One local cluster (``ray.init(num_cpus=2)``) serves the whole module: Ray's start-up is the
expensive part. Every workload is small (32–96 px grids; the physics default costs ~0.1 s there).
"""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is the [ray] extra (installed by .[test])")

from wifidiff_fast import RadioMapEstimator  # noqa: E402
from wifidiff_fast.distributed import RayExecutor  # noqa: E402
from wifidiff_fast.tiling import estimate_region  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    try:
        from ray import serve

        serve.shutdown()
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def est():
    return RadioMapEstimator.from_pretrained("small")


@pytest.fixture(scope="module")
def executor(cluster, est):
    """Two actors shared by the tests below (each actor start loads torch and the checkpoint)."""
    with RayExecutor(est, workers=2, retries=2, max_in_flight=2) as ex:
        yield ex


def _region(h=64, w=96, n=24, seed=0):
    rng = np.random.default_rng(seed)
    b = (rng.random((h, w)) < 0.12).astype(np.uint8)
    free = np.argwhere(b == 0)
    pick = free[rng.choice(len(free), n, replace=False)]
    # a smooth field (distance to a site outside the grid) so that the estimate is not noise
    d = np.hypot(pick[:, 0] + 20.0, pick[:, 1] - 40.0)
    return b, np.column_stack([pick, -40.0 - 25.0 * np.log10(1 + d)])


def _equal(a, b):
    np.testing.assert_array_equal(a.rss_dbm, b.rss_dbm)
    np.testing.assert_array_equal(a.uncertainty_db, b.uncertainty_db)
    np.testing.assert_array_equal(a.transmitters, b.transmitters)


# Serve first: the shared executor's two actors below hold both CPUs of the cluster until the end.
def test_serve_deployment_batches_concurrent_requests(cluster, est):
    from ray import serve

    from wifidiff_fast.distributed.serve import app

    serve.start(proxy_location="Disabled")
    import torch

    handle = serve.run(
        app(batch_wait_timeout_s=0.5, max_batch_size=8, threads=torch.get_num_threads()),
        name="wifidiff",
        route_prefix=None,
    )
    items = [_region(32, 40, 6, seed=k) for k in range(5)]
    bad = (items[0][0], np.array([[0, 0, 60.0]]))
    try:
        responses = [handle.estimate.remote(b, s) for b, s in items + [bad]]
        answers = [r.result(timeout_s=300) for r in responses]
        sizes = handle.batch_sizes.remote().result()
    finally:
        serve.delete("wifidiff")  # frees its CPU for the actors of the tests below
    for (b, s), out in zip(items, answers[:5]):
        assert out["ok"]
        np.testing.assert_array_equal(out["rss_dbm"], est.estimate(b, s).rss_dbm)
    assert not answers[5]["ok"] and "-130..-10 dBm" in answers[5]["error"]
    assert sum(sizes) == 5 and max(sizes) > 1, sizes


def test_region_on_ray_equals_local_bit_for_bit(cluster, est):
    b, s = _region(40, 100, 16)
    local = estimate_region(est, b, s, tile=40, overlap=8, share_sites=True)  # physics, both passes
    seen = []
    remote = estimate_region(
        est,
        b,
        s,
        tile=40,
        overlap=8,
        share_sites=True,
        executor="ray",
        workers=2,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    _equal(local, remote)
    assert local.tiles == 3 and seen[-1] == ("map", 3, 3) and ("localise", 3, 3) in seen


def test_many_maps_on_ray_equal_local(executor, est):
    items = [_region(32, 40, 6, seed=k) for k in range(5)]
    remote = list(executor.estimate_many(items, seed=4))
    with pytest.raises(ValueError, match="on a building"):  # bad input is not retried
        bad = (items[0][0], np.array([[*np.argwhere(items[0][0] == 1)[0], -60.0]]))
        list(executor.estimate_many([bad]))
    for (b, s), r in zip(items, remote):
        np.testing.assert_array_equal(r.rss_dbm, est.estimate(b, s, seed=4).rss_dbm)


def test_a_dead_actor_is_restarted_and_its_tile_retried(executor, est):
    b, s = _region(seed=1)
    kwargs = dict(tile=48, overlap=16, mode="diffusion", candidates=2, steps=2)
    local = estimate_region(est, b, s, **kwargs)
    killed = []

    def kill_once(stage, done, total):
        if not killed:  # the actor's in-flight tile fails with RayActorError and is retried
            ray.kill(executor.actors[0], no_restart=False)
            killed.append(done)

    before = executor.retried
    remote = estimate_region(est, b, s, executor=executor, progress=kill_once, **kwargs)
    assert executor.retried > before and len(executor.actors) == 2
    _equal(local, remote)
