"""Public election scoring: ``wifidiff::elect`` (spec: :func:`~wifidiff_fast.reference.elect_ref`)."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..reference.elect import ElectionParams, elect_ref, friis_drop, ray_offsets, ring_offsets
from . import _checks, backend as _backend


@lru_cache(maxsize=32)
def geometry_tables(
    params: ElectionParams, H: int, W: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Device-resident integer geometry shared by every kernel (cached per shape and device).

    ring offsets ``int32 [n_rings, n_angles, 2]``, Friis drop ``float64 [n_rings]``, ray offsets
    ``int32 [n_rays, H + W + 1, 2]``. Made on first use: call the op once before a CUDA-graph capture.
    """
    return (
        ring_offsets(params).to(device=device, dtype=torch.int32),
        friis_drop(params).to(device=device, dtype=torch.float64),
        ray_offsets(params, H + W).to(device=device, dtype=torch.int32).contiguous(),
    )


@torch.library.custom_op("wifidiff::elect", mutates_args=())
def _elect_op(
    candidates: torch.Tensor,
    R_hat: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    buildings: torch.Tensor,
    alpha: torch.Tensor,
    db_span: float,
    ring_radii: list[int],
    n_angles: int,
    n_tx: int,
    tx_drop_db: float,
    n_rays: int,
    tau_db: float,
    lam: float,
    gamma: float,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p = ElectionParams(db_span, tuple(ring_radii), n_angles, n_tx, tx_drop_db, n_rays, tau_db, lam, gamma)
    if backend == "reference":
        scores, elected, spread = elect_ref(candidates, R_hat, S, M, buildings, alpha, p)
        return scores.float(), elected, spread.float()
    H, W = candidates.shape[-2:]
    ring, drop, rays = geometry_tables(p, H, W, candidates.device)
    args = (
        candidates,
        R_hat,
        S,
        M,
        buildings,
        alpha,
        ring,
        drop,
        rays,
        p.n_tx,
        p.tx_drop,
        p.tau,
        p.lam,
        p.gamma,
        p.db_span / 2.0,
    )
    if backend == "triton":
        from ..kernels.elect import elect_triton

        return elect_triton(*args)
    from . import _native

    return tuple(_native.ops().elect(*args))


@_elect_op.register_fake
def _(
    candidates,
    R_hat,
    S,
    M,
    buildings,
    alpha,
    db_span,
    ring_radii,
    n_angles,
    n_tx,
    tx_drop_db,
    n_rays,
    tau_db,
    lam,
    gamma,
    backend,
):
    B, K, H, W = candidates.shape
    return (
        candidates.new_empty((B, K), dtype=torch.float32),
        candidates.new_empty((B,), dtype=torch.int64),
        candidates.new_empty((B, H, W), dtype=torch.float32),
    )


def elect(
    candidates: torch.Tensor,
    R_hat: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    buildings: torch.Tensor,
    alpha: torch.Tensor,
    params: ElectionParams = ElectionParams(),
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score K candidates per map, elect the arg-min, and measure their spread.

    Args:
        candidates: ``[B, K, H, W]`` (fp16/bf16/fp32/fp64).
        R_hat, S, M: ``[B, H, W]`` floating; buildings ``[B, H, W]`` bool/numeric (nonzero =
            building); alpha ``[B]`` floating.
        params: :class:`~wifidiff_fast.reference.elect.ElectionParams`.

    Returns:
        scores ``float32 [B, K]``, elected ``int64 [B]`` (ties: lower k), spread_db
        ``float32 [B, H, W]`` (0 on buildings).
    """
    _checks.tensor("candidates", candidates, ndim=4)
    dev = candidates.device
    _checks.nonempty("candidates", candidates)
    B, K, H, W = candidates.shape
    for n, t in (("R_hat", R_hat), ("S", S), ("M", M)):
        _checks.tensor(n, t, device=dev, shape=(B, H, W))
    _checks.tensor("buildings", buildings, dtypes=None, device=dev, shape=(B, H, W))
    _checks.tensor("alpha", alpha, device=dev, shape=(B,))
    if not isinstance(params, ElectionParams):
        raise TypeError(f"params must be an ElectionParams, got {type(params).__name__}")
    name = _backend.select("elect", dev, backend)
    ct = _checks.compute_dtype(candidates.dtype)
    R_hat, S, M, alpha = (t.to(ct).contiguous() for t in (R_hat, S, M, alpha))
    return _elect_op(
        candidates.contiguous(),
        R_hat,
        S,
        M,
        _checks.mask_u8(buildings),
        alpha,
        float(params.db_span),
        list(params.ring_radii),
        int(params.n_angles),
        int(params.n_tx),
        float(params.tx_drop_db),
        int(params.n_rays),
        float(params.tau_db),
        float(params.lam),
        float(params.gamma),
        name,
    )
