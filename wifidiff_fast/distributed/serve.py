"""A Ray Serve deployment of the Estimator that batches concurrent requests (``@serve.batch``).

    from ray import serve
    from wifidiff_fast.distributed.serve import app
    handle = serve.run(app(checkpoint="small"), name="wifidiff")
    out = handle.estimate.remote(buildings, samples).result()   # {"ok": True, "rss_dbm": ...}

Over HTTP (``serve.run(app(), route_prefix="/estimate")``): POST a JSON body
``{"buildings": [[0, 1, ...], ...], "samples": [[row, col, rss_dbm], ...]}``; the answer is the
same dict with the arrays as nested lists (NaN on buildings as ``null``).

Concurrent requests arriving within ``batch_wait_timeout_s`` are validated one by one (a bad
request gets its own error and does not fail the batch), then estimated in one
``estimate_batch`` call: maps of the same grid size share one network batch in diffusion mode.
Replicas scale with ``num_replicas`` (one per GPU where there are GPUs).
"""

from __future__ import annotations

import numpy as np
from ray import serve

from ..data.validate import check_buildings, check_samples

MAX_BATCH = 8
BATCH_WAIT_S = 0.02


@serve.deployment
class EstimatorDeployment:
    def __init__(
        self,
        checkpoint: str = "small",
        device: str = "cpu",
        estimate_kwargs: dict | None = None,
        max_batch_size: int = MAX_BATCH,
        batch_wait_timeout_s: float = BATCH_WAIT_S,
        threads: int | None = None,
    ):
        from ..pipeline.estimator import RadioMapEstimator

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.estimator = RadioMapEstimator.from_pretrained(checkpoint, device=device)
        self._estimate_batch.set_max_batch_size(max_batch_size)
        self._estimate_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.kwargs = dict(estimate_kwargs or {})
        self.batches: list[int] = []  # sizes of the batches run (observability, tests)

    def _validate(self, buildings, samples):
        b = check_buildings(buildings)
        return b, check_samples(samples, b, rss_range=(self.estimator.p_min, self.estimator.p_max))

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _estimate_batch(self, requests: list[tuple]) -> list[dict]:
        answers: list[dict | None] = [None] * len(requests)
        good, idx = [], []
        for i, (buildings, samples) in enumerate(requests):
            try:
                good.append(self._validate(buildings, samples))
                idx.append(i)
            except (TypeError, ValueError) as exc:
                answers[i] = {"ok": False, "error": str(exc)}
        if good:
            self.batches.append(len(good))
            try:
                results = self.estimator.estimate_batch(good, **self.kwargs)
            except (TypeError, ValueError) as exc:  # e.g. a grid below the networks' minimum
                results = None
                for i in idx:
                    answers[i] = {"ok": False, "error": str(exc)}
            for i, res in zip(idx, results or []):
                answers[i] = {
                    "ok": True,
                    "rss_dbm": res.rss_dbm,
                    "uncertainty_db": res.uncertainty_db,
                    "mode": res.mode,
                    "n_sites": res.n_sites,
                    "transmitters": None if res.transmitters is None else res.transmitters[: res.n_sites],
                }
        return answers  # type: ignore[return-value]

    async def estimate(self, buildings, samples) -> dict:
        return await self._estimate_batch((buildings, samples))

    def batch_sizes(self) -> list[int]:
        return list(self.batches)

    async def __call__(self, request) -> dict:
        body = await request.json()
        out = await self.estimate(
            np.asarray(body["buildings"]), np.asarray(body["samples"], dtype=np.float64)
        )
        return {k: _listify(v) for k, v in out.items()}


def _listify(v):
    """Arrays as nested lists for JSON, NaN (buildings) as null."""
    if isinstance(v, np.ndarray):
        out = v.astype(object)
        if v.dtype.kind == "f":
            out[~np.isfinite(v)] = None
        return out.tolist()
    return v


def app(
    checkpoint: str = "small",
    device: str = "cpu",
    num_replicas: int = 1,
    max_batch_size: int = MAX_BATCH,
    batch_wait_timeout_s: float = BATCH_WAIT_S,
    threads: int | None = None,
    **estimate_kwargs,
):
    """The deployment bound to its arguments, ready for ``serve.run``; ``estimate_kwargs`` (mode,
    seed, freq_mhz, ...) apply to every request. ``threads``: torch intra-op threads per replica
    (default: Ray's, the replica's CPUs)."""
    return EstimatorDeployment.options(num_replicas=num_replicas).bind(
        checkpoint, device, estimate_kwargs, max_batch_size, batch_wait_timeout_s, threads
    )
