"""Public condition merge (boost block, DESIGN §1 step 4): ``wifidiff::merge_condition``
(spec: :func:`~wifidiff_fast.reference.merge_condition_ref`)."""

from __future__ import annotations

import torch

from ..reference.merge_condition import merge_condition_ref
from . import _checks, backend as _backend


@torch.library.custom_op("wifidiff::merge_condition", mutates_args=())
def _merge_condition_op(
    R_hat: torch.Tensor, points: torch.Tensor, S: torch.Tensor, M: torch.Tensor, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if backend in ("cpp", "cuda"):
        from . import _native

        return tuple(_native.ops().merge_condition(R_hat, points, S, M))
    if backend == "triton":
        from ..kernels.merge_condition import merge_condition_triton

        return merge_condition_triton(R_hat, points, S, M)
    B, H, W = R_hat.shape
    inside = (points[..., 0] >= 0) & (points[..., 0] < H) & (points[..., 1] >= 0) & (points[..., 1] < W)
    points = torch.where(inside[..., None], points, torch.full_like(points, -1))
    return merge_condition_ref(R_hat, points, S, M)


@_merge_condition_op.register_fake
def _(R_hat, points, S, M, backend):
    return torch.empty_like(S), torch.empty_like(M)


def merge_condition(
    R_hat: torch.Tensor, points: torch.Tensor, S: torch.Tensor, M: torch.Tensor, backend: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
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
    return _merge_condition_op(R_hat.contiguous(), points.contiguous(), S.contiguous(), M.contiguous(), name)
