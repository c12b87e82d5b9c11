"""Public critical-point detector and condition merge (boost block, DESIGN §1 steps 2 and 4).

``wifidiff::critical_points`` (spec: :func:`~wifidiff_fast.reference.critical_points_ref`) and
``wifidiff::merge_condition`` (spec: :func:`~wifidiff_fast.reference.merge_condition_ref`).
"""

from __future__ import annotations

import math

import torch

from ..reference.critical_points import critical_points_ref, merge_condition_ref
from . import _checks, backend as _backend


@torch.library.custom_op("wifidiff::critical_points", mutates_args=())
def _critical_points_op(R_hat: torch.Tensor, buildings: torch.Tensor, sigma: float, capacity: int,
                        min_response: float, backend: str
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if backend in ("cpp", "cuda"):
        from . import _native

        return tuple(_native.ops().critical_points(R_hat, buildings, sigma, capacity, min_response))
    if backend == "triton":
        from ..kernels.critical_points import critical_points_triton

        return critical_points_triton(R_hat, buildings, sigma, capacity, min_response)
    ct = _checks.compute_dtype(R_hat.dtype)
    points, response, count = critical_points_ref(R_hat.to(ct), buildings, sigma, capacity, min_response)
    return points, response.to(R_hat.dtype), count


@_critical_points_op.register_fake
def _(R_hat, buildings, sigma, capacity, min_response, backend):
    B = R_hat.shape[0]
    return (R_hat.new_empty((B, capacity, 2), dtype=torch.int64),
            R_hat.new_empty((B, capacity)), R_hat.new_empty((B,), dtype=torch.int64))


def window_radius(sigma: float) -> int:
    """Radius of the Gaussian window (as ``reference.critical_points.gaussian_kernel1d``)."""
    return max(1, math.ceil(3.0 * sigma))


def critical_points(R_hat: torch.Tensor, buildings: torch.Tensor, sigma: float = 1.5,
                    capacity: int = 64, min_response: float = 1e-8, backend: str | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``capacity`` structure-tensor critical points of each rough map.

    Args:
        R_hat: ``[B, H, W]`` rough map (fp16/bf16/fp32/fp64); H, W ≥ the window, 2·ceil(3σ)+1.
        buildings: ``[B, H, W]`` (nonzero = building), bool or any numeric dtype.

    Returns:
        points ``int64 [B, capacity, 2]`` (row, col; −1 in empty slots), response ``[B, capacity]``
        (R_hat's dtype, 0 in empty slots), count ``int64 [B]``.
    """
    _checks.tensor("R_hat", R_hat, ndim=3)
    dev = R_hat.device
    _checks.nonempty("R_hat", R_hat)
    _checks.tensor("buildings", buildings, dtypes=None, device=dev, shape=R_hat.shape)
    sigma = _checks.finite_float("sigma", sigma, positive=True)
    capacity = _checks.positive_int("capacity", capacity)
    min_response = _checks.finite_float("min_response", min_response, nonneg=True)
    window = 2 * window_radius(sigma) + 1
    if min(R_hat.shape[1:]) < window:
        raise ValueError(f"R_hat is {R_hat.shape[1]}x{R_hat.shape[2]}, smaller than the "
                         f"{window}x{window} Gaussian window of sigma={sigma}")
    name = _backend.select("critical_points", dev, backend)
    return _critical_points_op(R_hat.contiguous(), _checks.mask_u8(buildings), sigma, capacity,
                               min_response, name)


@torch.library.custom_op("wifidiff::merge_condition", mutates_args=())
def _merge_condition_op(R_hat: torch.Tensor, points: torch.Tensor, S: torch.Tensor, M: torch.Tensor,
                        backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    if backend in ("cpp", "cuda"):
        from . import _native

        return tuple(_native.ops().merge_condition(R_hat, points, S, M))
    if backend == "triton":
        from ..kernels.critical_points import merge_condition_triton

        return merge_condition_triton(R_hat, points, S, M)
    B, H, W = R_hat.shape
    inside = ((points[..., 0] >= 0) & (points[..., 0] < H) & (points[..., 1] >= 0)
              & (points[..., 1] < W))
    points = torch.where(inside[..., None], points, torch.full_like(points, -1))
    return merge_condition_ref(R_hat, points, S, M)


@_merge_condition_op.register_fake
def _(R_hat, points, S, M, backend):
    return torch.empty_like(S), torch.empty_like(M)


def merge_condition(R_hat: torch.Tensor, points: torch.Tensor, S: torch.Tensor, M: torch.Tensor,
                    backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """S′, M′: R̂ at the boost points (critical + random), real samples written last.

    Args:
        R_hat, S, M: ``[B, H, W]``, one floating dtype.
        points: ``int64 [B, P, 2]`` (row, col); slots with a negative or off-grid point are empty.
    """
    _checks.tensor("R_hat", R_hat, ndim=3)
    dev = R_hat.device
    _checks.nonempty("R_hat", R_hat)
    for n, t in (("S", S), ("M", M)):
        _checks.tensor(n, t, dtypes=(R_hat.dtype,), device=dev, shape=R_hat.shape)
    _checks.tensor("points", points, ndim=3, dtypes=(torch.int64,), device=dev)
    if points.shape[0] != R_hat.shape[0] or points.shape[2] != 2:
        raise ValueError(f"points must be [B={R_hat.shape[0]}, P, 2], got {tuple(points.shape)}")
    name = _backend.select("merge_condition", dev, backend)
    return _merge_condition_op(R_hat.contiguous(), points.contiguous(), S.contiguous(),
                               M.contiguous(), name)
