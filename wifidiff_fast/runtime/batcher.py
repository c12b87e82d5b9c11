"""Micro-batching for services: concurrent ``estimate`` calls from several threads become one
``estimate_batch`` call.

    >>> batcher = MicroBatcher(estimator, window_ms=5, max_batch=16)
    >>> res = batcher.estimate(buildings, samples, mode="diffusion")   # from any thread

A worker thread takes the first waiting request, waits up to ``window_ms`` for more (or until
``max_batch`` are waiting), and runs the requests that share the same options and grid size as
one batch of B·K candidates. Results equal unbatched calls: every map's noise, random points and
election are seeded per map, never per batch (the estimator's contract). A batch that fails (one
bad input) is retried map by map, so each caller gets its own result or its own exception.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np


# eq=False: requests compare by identity. The generated __eq__ compared the numpy fields, so
# ``queue.remove(r)`` raised "truth value of an array is ambiguous" when a batch skipped a request
# of another grid size, killing the worker thread and leaving every caller waiting forever.
@dataclass(eq=False)
class _Request:
    buildings: np.ndarray
    samples: np.ndarray
    options: dict
    future: Future = field(default_factory=Future)

    def group(self) -> tuple:
        shape = tuple(np.shape(self.buildings))
        return shape, tuple(sorted((k, repr(v)) for k, v in self.options.items()))


class MicroBatcher:
    def __init__(self, estimator, window_ms: float = 5.0, max_batch: int = 16):
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.estimator = estimator
        self.window = window_ms / 1e3
        self.max_batch = int(max_batch)
        self._queue: list[_Request] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0  # estimate_batch calls made
        self.requests = 0  # requests served
        self._worker = threading.Thread(target=self._loop, name="wifidiff-microbatcher", daemon=True)
        self._worker.start()

    def submit(self, buildings, samples, **options) -> Future:
        """Queue one map; the future resolves to its ``EstimateResult``."""
        if "transmitters" in options:
            raise ValueError(
                "the micro-batcher serves maps independently; pass transmitters= to "
                "estimator.estimate directly"
            )
        req = _Request(buildings, samples, options)
        with self._cond:
            if self._closed:
                raise RuntimeError("this MicroBatcher is closed")
            self._queue.append(req)
            self._cond.notify_all()
        return req.future

    def estimate(self, buildings, samples, **options):
        """Like ``estimator.estimate`` (blocks until this map's batch is done)."""
        return self.submit(buildings, samples, **options).result()

    def close(self) -> None:
        """Serve what is queued, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- worker ------------------------------------------------------------------------------
    def _take(self) -> list[_Request] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self.window
            while len(self._queue) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            first = self._queue[0].group()
            batch = [r for r in self._queue if r.group() == first][: self.max_batch]
            for r in batch:
                self._queue.remove(r)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._serve(batch)
            except BaseException as exc:  # never leave a caller waiting on a dead worker
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)

    def _serve(self, batch: list[_Request]) -> None:
        options = batch[0].options
        try:
            results = self.estimator.estimate_batch([(r.buildings, r.samples) for r in batch], **options)
            self.batches += 1
        except Exception:
            results = None
        if results is not None:
            for r, res in zip(batch, results):
                r.future.set_result(res)
            self.requests += len(batch)
            return
        for r in batch:  # one bad map must not fail its neighbours
            try:
                r.future.set_result(self.estimator.estimate_batch([(r.buildings, r.samples)], **r.options)[0])
            except Exception as exc:
                r.future.set_exception(exc)
            self.batches += 1
            self.requests += 1
