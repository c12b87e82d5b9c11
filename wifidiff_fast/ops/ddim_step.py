"""Public fused DDIM update: ``wifidiff::ddim_step`` (spec: :func:`~wifidiff_fast.reference.ddim_step_ref`)."""

from __future__ import annotations

import torch

from ..reference.ddim_step import ddim_step_ref
from . import _checks, backend as _backend


@torch.library.custom_op("wifidiff::ddim_step", mutates_args=())
def _ddim_step_op(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    table: torch.Tensor,
    step: torch.Tensor,
    noise: torch.Tensor | None,
    clip_sample: bool,
    clip_range: float,
    known: torch.Tensor | None,
    known_mask: torch.Tensor | None,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    if backend in ("cpp", "cuda"):
        from . import _native

        return tuple(
            _native.ops().ddim_step(x_t, eps, table, step, noise, clip_sample, clip_range, known, known_mask)
        )
    if backend == "triton":
        from ..kernels.ddim_step import ddim_step_triton

        return ddim_step_triton(x_t, eps, table, step, noise, clip_sample, clip_range, known, known_mask)
    x_prev, x0_pred = ddim_step_ref(x_t, eps, table, step, noise, clip_sample, clip_range, known, known_mask)
    return x_prev.clone() if x_prev is x_t else x_prev, x0_pred


@_ddim_step_op.register_fake
def _(x_t, eps, table, step, noise, clip_sample, clip_range, known, known_mask, backend):
    return torch.empty_like(x_t), torch.empty_like(x_t)


def ddim_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    table: torch.Tensor,
    step: torch.Tensor | int,
    noise: torch.Tensor | None = None,
    clip_sample: bool = True,
    clip_range: float = 1.0,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One fused DDIM update x_t → x_{t−1} for a batch ``[N, C, H, W]`` (any shape works).

    Args:
        x_t, eps: same shape, dtype (fp16/bf16/fp32/fp64) and device.
        table: ``[n_steps, 5]`` coefficient table from ``sampling.schedules.ddim_table`` (fp32/fp64).
        step: row of ``table``: an int, or an integer 0-dim tensor (keep it on the device for CUDA
            graph capture; an out-of-range device-side step yields NaN instead of reading out of
            bounds).
        noise: standard normal noise shaped like ``x_t`` (used when σ_t > 0), or None.
        known, known_mask: optional known-sample write of the condition raster, given together:
            ``[G, *x_t.shape[1:]]`` with G dividing ``x_t.shape[0]`` (K = N // G consecutive
            candidates share a row); ``known`` in x_t's dtype, ``known_mask`` any numeric/bool
            0/1 raster. Where the mask is set, x0_pred is the known value (after clipping).
        backend: override the backend choice (see :mod:`wifidiff_fast.ops.backend`).

    Returns:
        ``(x_prev, x0_pred)`` shaped like ``x_t`` in its dtype (fp32/fp64 accumulation inside).
    """
    _checks.tensor("x_t", x_t)
    dev = x_t.device
    _checks.nonempty("x_t", x_t)
    _checks.tensor("eps", eps, dtypes=(x_t.dtype,), device=dev, shape=x_t.shape)
    _checks.tensor("table", table, ndim=2, dtypes=(torch.float32, torch.float64), device=dev)
    if table.shape[1] != 5 or table.shape[0] < 1:
        raise ValueError(f"table must be [n_steps, 5] (n_steps >= 1), got {tuple(table.shape)}")
    if noise is not None:
        _checks.tensor("noise", noise, dtypes=(x_t.dtype,), device=dev, shape=x_t.shape)
    if isinstance(step, torch.Tensor):
        _checks.tensor("step", step, ndim=0, dtypes=(torch.int32, torch.int64))
        if step.device != dev and step.device.type != "cpu":
            raise ValueError(f"step is on {step.device}; expected {dev} or cpu")
        step_t = step.to(torch.int64)
    elif isinstance(step, int) and not isinstance(step, bool):
        if not 0 <= step < table.shape[0]:
            raise ValueError(f"step {step} is out of range for a table of {table.shape[0]} steps")
        step_t = torch.tensor(step, dtype=torch.int64)
    else:
        raise TypeError(f"step must be an int or a 0-dim integer tensor, got {type(step).__name__}")
    clip_range = _checks.finite_float("clip_range", clip_range, positive=True)
    if (known is None) != (known_mask is None):
        raise ValueError("known and known_mask go together: give both or neither")
    if known is not None:
        _checks.tensor("known", known, dtypes=(x_t.dtype,), device=dev)
        _checks.tensor("known_mask", known_mask, dtypes=None, device=dev, shape=known.shape)
        groups = known.shape[0] if known.dim() == x_t.dim() else 0
        if known.shape[1:] != x_t.shape[1:] or groups < 1 or x_t.shape[0] % groups:
            raise ValueError(
                f"known has shape {tuple(known.shape)}; expected [G, "
                f"{', '.join(map(str, x_t.shape[1:]))}] with G dividing {x_t.shape[0]}"
            )
        known, known_mask = known.contiguous(), _checks.mask_u8(known_mask)
    name = _backend.select("ddim_step", dev, backend)
    table = table.to(_checks.compute_dtype(x_t.dtype)).contiguous()
    return _ddim_step_op(
        x_t.contiguous(),
        eps.contiguous(),
        table,
        step_t,
        None if noise is None else noise.contiguous(),
        bool(clip_sample),
        clip_range,
        known,
        known_mask,
        name,
    )
