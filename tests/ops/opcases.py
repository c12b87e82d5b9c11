"""Shared cases and helpers of the op tests: which backends run here, on which device.

Every op test is parametrised over (backend, device). A backend that cannot run here skips with
the reason from ``wifidiff_fast.ops.backend.availability`` (building the C++ extension on first
use). Triton on CPU runs under ``TRITON_INTERPRET=1`` (set in tests/conftest.py), so CPU tests
give it small shapes only.
"""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.ops import backend as _backend

CASES = [
    pytest.param("reference", "cpu", id="reference-cpu"),
    pytest.param("cpp", "cpu", id="cpp-cpu"),
    pytest.param("triton", "cpu", id="triton-interpret"),
    pytest.param("cuda", "cuda", id="cuda-cuda", marks=pytest.mark.gpu),
    pytest.param("triton", "cuda", id="triton-cuda", marks=pytest.mark.gpu),
    pytest.param("reference", "cuda", id="reference-cuda", marks=pytest.mark.gpu),
]
NATIVE_CASES = [c for c in CASES if c.values[0] in ("cpp", "cuda", "triton")]


def require(backend: str, device: str) -> None:
    av = _backend.availability(backend, device)
    if not av.ok:
        pytest.skip(f"{backend} on {device} unavailable: {av.reason.splitlines()[0][:200]}")


def interpreted(backend: str, device: str) -> bool:
    """Triton on CPU tensors runs in the (slow) interpreter: keep shapes small."""
    return backend == "triton" and device == "cpu"


def require_small_if_interpreted(backend: str, device: str, shape_id: str) -> None:
    """Skip the large shapes for Triton under the interpreter (minutes per call there)."""
    if interpreted(backend, device) and shape_id in ("256", "batch64"):
        pytest.skip("Triton interpreter: small shapes only")


def make_gen(seed: int = 1234) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def noncontig(t: torch.Tensor) -> torch.Tensor:
    """The same values as ``t`` in a non-contiguous view (every other column of a wider tensor)."""
    wide = torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
    wide[..., ::2] = t
    wide[..., 1::2] = float("nan") if t.is_floating_point() else 0
    out = wide[..., ::2]
    assert not out.is_contiguous()
    return out
