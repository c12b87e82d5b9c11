"""Public critical-point detector (boost block, DESIGN §1 step 2): ``wifidiff::critical_points``
(spec: :func:`~wifidiff_fast.reference.critical_points_ref`)."""

from __future__ import annotations

import math

import torch

from ..reference.critical_points import critical_points_ref
from . import _checks, backend as _backend


@torch.library.custom_op("wifidiff::critical_points", mutates_args=())
def _critical_points_op(
    R_hat: torch.Tensor,
    buildings: torch.Tensor,
    sigma: float,
    capacity: int,
    min_response: float,
    backend: str,
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
    return (
        R_hat.new_empty((B, capacity, 2), dtype=torch.int64),
        R_hat.new_empty((B, capacity)),
        R_hat.new_empty((B,), dtype=torch.int64),
    )


def window_radius(sigma: float) -> int:
    """Radius of the Gaussian window (as ``reference.critical_points.gaussian_kernel1d``)."""
    return max(1, math.ceil(3.0 * sigma))


def critical_points(
    R_hat: torch.Tensor,
    buildings: torch.Tensor,
    sigma: float = 1.5,
    capacity: int = 64,
    min_response: float = 1e-8,
    backend: str | None = None,
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
        raise ValueError(
            f"R_hat is {R_hat.shape[1]}x{R_hat.shape[2]}, smaller than the "
            f"{window}x{window} Gaussian window of sigma={sigma}"
        )
    name = _backend.select("critical_points", dev, backend)
    return _critical_points_op(
        R_hat.contiguous(), _checks.mask_u8(buildings), sigma, capacity, min_response, name
    )
