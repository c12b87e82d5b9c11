"""NVTX ranges ``wifidiff/<stage>[<backend>]`` for Nsight, with a no-op fallback.

Ranges are pushed only while enabled (``enable(True)``, ``bench --nvtx``) and only where a
marker library is present: torch's ``torch.cuda.nvtx`` on a CUDA build with a GPU, otherwise the
``nvtx`` package from PyPI (which works without a GPU). Without either, or while disabled,
:func:`annotate` costs one branch. A captured CUDA graph's replay is annotated as
``wifidiff/<stage>[graph]``.
"""

from __future__ import annotations

import contextlib
import functools

_enabled = False


def enable(on: bool = True) -> None:
    """Turn the ranges on or off for this process (off by default: no profiler, no cost)."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    return _enabled


@functools.lru_cache(maxsize=1)
def _markers():
    """(push, pop) of the first working marker library, or None."""
    try:
        import torch

        if torch.version.cuda is not None and torch.cuda.is_available():
            return torch.cuda.nvtx.range_push, torch.cuda.nvtx.range_pop
    except Exception:  # torch.cuda.nvtx raises on CPU builds
        pass
    try:
        import nvtx

        return (lambda msg: nvtx.push_range(msg, domain="wifidiff")), (
            lambda: nvtx.pop_range(domain="wifidiff")
        )
    except Exception:
        return None


def range_name(stage: str, backend: str | None = None) -> str:
    return f"wifidiff/{stage}" + (f"[{backend}]" if backend else "")


@contextlib.contextmanager
def annotate(stage: str, backend: str | None = None):
    """``with annotate("generation", "aot"):`` — an NVTX range when enabled, else nothing."""
    markers = _markers() if _enabled else None
    if markers is None:
        yield
        return
    push, pop = markers
    push(range_name(stage, backend))
    try:
        yield
    finally:
        pop()
