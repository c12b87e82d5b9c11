"""Peak host memory of one benchmark run: the process RSS sampled by a background thread while the
run executes, reported as its peak and as that peak minus the RSS just before the run.

Why not ``getrusage().ru_maxrss``: it is the process's lifetime peak, so once the largest run has
happened every row (engine, reference, peers) shows the same figure. Sampling sees each run's own
peak, with two limits worth knowing when reading the numbers:

* a spike shorter than ``INTERVAL_S`` can be missed (touching a few hundred MB takes longer);
* memory the allocator kept from an earlier run and hands out again does not raise the RSS, so
  the delta is the memory a run *added* to what the process already held — after warm-up, a
  run's transient working set beyond the steady state, not its total footprint.

The sampler wakes every ``INTERVAL_S`` and takes the GIL briefly (one read of
``/proc/self/statm``), a cost paid alike by every implementation in the interleaved runs.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable

INTERVAL_S = 0.005
MB = 2**20


def rss_reader() -> Callable[[], int] | None:
    """A function returning the process RSS in bytes: psutil where installed, else Linux's
    ``/proc/self/statm``; None where neither works (the figures are then nan)."""
    try:
        import psutil

        proc = psutil.Process()
        return lambda: proc.memory_info().rss
    except ImportError:
        pass
    if not os.path.exists("/proc/self/statm"):
        return None
    page = os.sysconf("SC_PAGE_SIZE")

    def statm() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * page

    return statm


class PeakRSS:
    """``with PeakRSS() as m: run()``, then ``m.peak_mb`` (the highest RSS seen, MiB) and
    ``m.delta_mb`` (that peak minus the RSS on entry)."""

    def __init__(self, interval_s: float = INTERVAL_S, reader: Callable[[], int] | None = None):
        self.interval_s = interval_s
        self._read = reader or rss_reader()
        self.before = self.peak = math.nan

    def __enter__(self) -> PeakRSS:
        if self._read is None:
            return self
        self.before = self.peak = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-peak-rss", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self._read())

    def __exit__(self, *exc) -> None:
        if self._read is None:
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())  # a peak still held at the end is not missed

    @property
    def peak_mb(self) -> float:
        return self.peak / MB

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.before) / MB
