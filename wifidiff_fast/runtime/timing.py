"""Per-stage request timings: wall clock on the CPU, CUDA events on a GPU.

On a GPU a stage's kernels are queued, not finished, when its Python code returns; timing them
with ``cuda.synchronize`` around every stage stalls the queue between stages. :class:`StageTimer`
records a pair of CUDA events per stage instead and reads them once, in :meth:`StageTimer.result`,
after the request's last kernel (the one host synchronisation, which the copy of the result to
the host needs anyway). Every stage is also an NVTX range ``wifidiff/<stage>[<backend>]``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from .nvtx import annotate


class StageTimer:
    def __init__(self, device: torch.device | str, backend: str | None = None):
        self.device = torch.device(device)
        self.backend = backend
        self.cuda = self.device.type == "cuda"
        self._cpu: dict[str, float] = {}
        self._events: list[tuple[str, object, object]] = []
        self._t0 = time.perf_counter()
        self._start = self._event() if self.cuda else None

    def _event(self):
        ev = torch.cuda.Event(enable_timing=True)
        ev.record(torch.cuda.current_stream(self.device))
        return ev

    @contextmanager
    def stage(self, name: str):
        with annotate(name, self.backend):
            if self.cuda:
                start = self._event()
                yield
                self._events.append((name, start, self._event()))
            else:
                t0 = time.perf_counter()
                yield
                self._cpu[name] = self._cpu.get(name, 0.0) + (time.perf_counter() - t0) * 1e3

    def result(self) -> dict[str, float]:
        """Milliseconds per stage plus ``total`` (synchronises on the last event on a GPU)."""
        if not self.cuda:
            return {**self._cpu, "total": (time.perf_counter() - self._t0) * 1e3}
        end = self._event()
        end.synchronize()
        out: dict[str, float] = {}
        for name, a, b in self._events:
            out[name] = out.get(name, 0.0) + a.elapsed_time(b)
        out["total"] = self._start.elapsed_time(end)
        return out
