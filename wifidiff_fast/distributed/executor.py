"""Tiles (or many maps) over a Ray cluster: one actor per worker, each holding one Estimator.

The estimator's networks and config are put in the object store once; every actor builds its own
:class:`~wifidiff_fast.RadioMapEstimator` from them (on its GPU when the estimator runs on CUDA and
the cluster has GPUs: one actor per GPU). Jobs are handed to idle actors; results stream back and
are yielded **in job order** with at most ``max_in_flight`` jobs submitted ahead of the oldest
unfinished one, which bounds the memory held by results and makes the output independent of which
actor ran what (the blend sums in the same order as a local run: the same bits).

Each actor runs torch with the same number of intra-op threads as the calling process unless
``threads_per_worker`` says otherwise: float reductions split over a different number of threads
round differently, and equal thread counts are what make a Ray run reproduce a local one bit for
bit. On a cluster, set ``threads_per_worker`` to the CPUs per actor for throughput (results then
differ from a local run in the last float32 bits only).

A job whose actor died (``RayActorError``: the actor restarts, up to ``retries`` times) or that
raised an unexpected error is retried up to ``retries`` times; bad input (``ValueError`` /
``TypeError``) is raised at once, since a retry would fail the same way.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np


def _actor_class():
    import ray

    @ray.remote
    class EstimatorActor:
        def __init__(self, model, threads: int | None):
            import torch

            from ..pipeline.estimator import RadioMapEstimator

            if threads:
                torch.set_num_threads(threads)
            nets, config, device, backend = model
            self.estimator = RadioMapEstimator(nets, config, device, backend)

        def run(self, buildings, job, kwargs):
            from ..tiling.region import run_job

            return run_job(self.estimator, buildings, job, kwargs)

        def ready(self) -> bool:
            return True

        def estimate(self, buildings, samples, kwargs):
            return self.estimator.estimate(buildings, samples, **kwargs)

    return EstimatorActor


class RayExecutor:
    """``RayExecutor(estimator, address=None, workers=None)``: connects to ``address`` (or the
    running Ray session, or starts a local one, which :meth:`close` shuts down again)."""

    def __init__(
        self,
        estimator,
        address: str | None = None,
        workers: int | None = None,
        retries: int = 2,
        max_in_flight: int | None = None,
        threads_per_worker: int | None = None,
    ):
        try:
            import ray
        except ImportError:
            raise ImportError("executor='ray' needs Ray: pip install 'wifidiff_fast[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            self.started = True
        resources = ray.cluster_resources()
        on_gpu = estimator.device.type == "cuda" and resources.get("GPU", 0) >= 1
        n = workers or max(1, int(resources.get("GPU" if on_gpu else "CPU", 1)))
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.retries = retries
        if threads_per_worker is None:
            import torch

            threads_per_worker = torch.get_num_threads()
        self.max_in_flight = max_in_flight or 2 * n
        # kept on self: a restarting actor reads it again, so it must outlive the constructor
        self._model = ray.put(
            (estimator.nets, estimator.config, "cuda" if on_gpu else "cpu", estimator.backend or "auto")
        )
        options = dict(num_gpus=1) if on_gpu else dict(num_cpus=1)
        cls = _actor_class()
        self.actors = [
            cls.options(max_restarts=retries, **options).remote(self._model, threads_per_worker)
            for _ in range(n)
        ]
        self.retried = 0

    def _submit(self, actor, method: str, args):
        return getattr(actor, method).remote(*args)

    def _map(self, method: str, args_list: list[tuple], progress=None):
        """Yield ``method(*args)`` for every args tuple, in order, from the actors."""
        ray = self.ray
        free = deque(self.actors)
        pending: dict = {}  # ref -> (index, actor, attempt)
        done: dict[int, object] = {}
        next_out, next_in = 0, 0
        total = len(args_list)
        while next_out < total:
            while free and next_in < total and next_in < next_out + self.max_in_flight:
                actor = free.popleft()
                pending[self._submit(actor, method, args_list[next_in])] = (next_in, actor, 0)
                next_in += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            index, actor, attempt = pending.pop(ref)
            try:
                done[index] = ray.get(ref)
                free.append(actor)
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, (ValueError, TypeError)):
                    raise cause from None
                if attempt >= self.retries:
                    raise RuntimeError(f"job {index} failed {attempt + 1} times on Ray: {exc}") from None
                self.retried += 1
                if isinstance(exc, ray.exceptions.RayActorError) and not self._wait_ready(actor):
                    self.actors.remove(actor)  # gone for good (restarts used up): carry on without it
                    if not self.actors:
                        raise RuntimeError(f"every Ray actor died; last error: {exc}") from None
                    actor = free.popleft() if free else self._any_busy(pending)
                pending[self._submit(actor, method, args_list[index])] = (index, actor, attempt + 1)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
                if progress:
                    progress(next_out, total)

    def _wait_ready(self, actor, timeout_s: float = 180.0) -> bool:
        """Block until a restarting actor answers again (True) or it is dead for good (False)."""
        ray = self.ray
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                return bool(ray.get(actor.ready.remote(), timeout=timeout_s))
            except ray.exceptions.ActorUnavailableError:
                time.sleep(0.5)  # restarting: its constructor is loading the estimator
            except ray.exceptions.RayActorError:
                return False
            except ray.exceptions.GetTimeoutError:
                return False
        return False

    @staticmethod
    def _any_busy(pending: dict):
        """An actor that has work queued already (a new job waits behind it)."""
        return next(iter(pending.values()))[1]

    def run(self, buildings: np.ndarray, jobs: list, kwargs: dict):
        """The tile executor interface of :func:`wifidiff_fast.tiling.estimate_region`."""
        ref = self.ray.put(buildings)
        yield from self._map("run", [(ref, job, kwargs) for job in jobs])

    def estimate_many(self, items, progress=None, **kwargs):
        """Many independent maps ``[(buildings, samples), ...]``: yields EstimateResults in order."""
        return self._map("estimate", [(b, s, kwargs) for b, s in items], progress)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started:
            self.ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["RayExecutor"]
