"""Input validation shared by the public ops: a clear Python error before any kernel launches.

Type problems raise ``TypeError``; shape, size, device and value problems raise ``ValueError``.
The C++ operators repeat the checks with ``TORCH_CHECK`` (csrc/checks.h) so that a direct call of
``torch.ops.wifidiff_C.*`` cannot crash the process either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 accumulation for every floating input, fp64 for fp64 (the oracle path)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def tensor(
    name: str,
    t: Any,
    *,
    ndim: int | None = None,
    dtypes: Sequence[torch.dtype] | None = FLOAT_DTYPES,
    device: torch.device | None = None,
    shape: Sequence[int] | None = None,
) -> torch.Tensor:
    """``t`` itself once it is a tensor of an allowed dtype (``None``: any), rank, shape and device."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if dtypes is not None and t.dtype not in dtypes:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} has dtype {t.dtype}; expected one of {allowed}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {tuple(shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the other inputs are on {device}")
    if t.device.type not in ("cpu", "cuda", "meta"):
        raise ValueError(f"{name} is on {t.device}; only cpu and cuda tensors are supported")
    return t


def nonempty(name: str, t: torch.Tensor) -> None:
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}); an empty batch has nothing to do")


def positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return v


def finite_float(name: str, v: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or (positive and v <= 0) or (nonneg and v < 0):
        cond = " > 0" if positive else (" >= 0" if nonneg else "")
        raise ValueError(f"{name} must be a finite float{cond}, got {v}")
    return v


def mask_u8(t: torch.Tensor) -> torch.Tensor:
    """A 0/1 raster of any numeric/bool dtype as contiguous uint8 (free for bool and uint8)."""
    if t.dtype == torch.bool:
        return t.contiguous().view(torch.uint8)
    if t.dtype == torch.uint8:
        return t.contiguous()
    return (t != 0).to(torch.uint8)
