"""Triton fused DDIM update (spec: ``wifidiff_fast.reference.ddim_step.ddim_step_ref``).

Performance envelope: a pure streaming kernel (read x_t, eps[, noise][, the known-sample raster,
shared by the K candidates of a map], write x_prev, x0_pred);
one program per BLOCK elements, fp32 math (fp64 for fp64 inputs), so it should run at a large
fraction of the GPU's memory bandwidth for any batch above a few maps. The step row is read from
the device table by a device-side index: graph-capturable, no host sync.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import triton
import triton.language as tl


@triton.jit
def _ddim_step_kernel(
    x_ptr,
    eps_ptr,
    noise_ptr,
    known_ptr,
    known_mask_ptr,
    table_ptr,
    step_ptr,
    x_prev_ptr,
    x0_ptr,
    n,
    plane,
    per_group,
    n_steps,
    clip_range,
    HAS_NOISE: tl.constexpr,
    CLIP: tl.constexpr,
    HAS_KNOWN: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    # per-step coefficients: one row of the [n_steps, 5] table, by device-side step index
    step = tl.load(step_ptr)
    ok = (step >= 0) & (step < n_steps)
    row = table_ptr + tl.where(ok, step, 0) * 5
    sqrt_ab_t = tl.load(row + 0)
    sqrt_1m_ab_t = tl.load(row + 1)
    sqrt_ab_prev = tl.load(row + 2)
    dir_coef = tl.load(row + 3)
    sigma_t = tl.load(row + 4)
    acc_dtype = sqrt_ab_t.dtype
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(acc_dtype)
    e = tl.load(eps_ptr + offs, mask=mask, other=0.0).to(acc_dtype)
    # 1. predicted x0 (eq. 12, first term)
    x0 = (x - sqrt_1m_ab_t * e) / sqrt_ab_t
    # 2. optional clipping (NaN stays NaN)
    if CLIP:
        x0 = tl.where(x0 < -clip_range, -clip_range, tl.where(x0 > clip_range, clip_range, x0))
    # 2b. optional known-sample write: candidate offs // plane reads raster row (…) // per_group
    if HAS_KNOWN:
        cand = offs // plane
        k = (cand // per_group) * plane + (offs - cand * plane)
        write = tl.load(known_mask_ptr + k, mask=mask, other=0) != 0
        kv = tl.load(known_ptr + k, mask=mask & write, other=0.0).to(acc_dtype)
        x0 = tl.where(write, kv, x0)
    # 3. direction pointing to x_t, 4. x_{t-1}
    x_prev = sqrt_ab_prev * x0 + dir_coef * e
    # 5. + sigma_t * z when eta > 0
    if HAS_NOISE:
        z = tl.load(noise_ptr + offs, mask=mask, other=0.0).to(acc_dtype)
        x_prev = x_prev + sigma_t * z
    # an out-of-range device step poisons the output instead of reading out of bounds
    x_prev = tl.where(ok, x_prev, float("nan"))
    tl.store(x_prev_ptr + offs, x_prev.to(x_prev_ptr.dtype.element_ty), mask=mask)
    tl.store(x0_ptr + offs, x0.to(x0_ptr.dtype.element_ty), mask=mask)


def ddim_step_triton(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    table: torch.Tensor,
    step: torch.Tensor,
    noise: torch.Tensor | None,
    clip_sample: bool,
    clip_range: float,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    block: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launcher: inputs already validated and contiguous by ``wifidiff_fast.ops.ddim_step``."""
    x_prev = torch.empty_like(x_t)
    x0_pred = torch.empty_like(x_t)
    n = x_t.numel()
    plane = n // x_t.shape[0]
    per_group = x_t.shape[0] // known.shape[0] if known is not None else 1
    step = step.to(device=x_t.device, dtype=torch.int64)
    grid = (triton.cdiv(n, block),)
    _ddim_step_kernel[grid](
        x_t,
        eps,
        noise if noise is not None else x_t,
        known if known is not None else x_t,
        known_mask if known_mask is not None else x_t,
        table,
        step,
        x_prev,
        x0_pred,
        n,
        plane,
        per_group,
        table.shape[0],
        clip_range,
        HAS_NOISE=noise is not None,
        CLIP=bool(clip_sample),
        HAS_KNOWN=known is not None,
        BLOCK=block,
    )
    return x_prev, x0_pred


def aot_examples() -> Iterator[tuple[str, Callable[..., object], tuple]]:
    """Small launches (tag, launcher, args) whose kernel signatures ``kernels/_aot.py`` compiles for
    the GPU: fp32 with and without the known-sample write, and the low-precision inputs."""
    table = torch.linspace(0.1, 0.9, 20, dtype=torch.float32).reshape(4, 5)
    step = torch.tensor(1, dtype=torch.int64)
    for dtype, known in (
        (torch.float32, False),
        (torch.float32, True),
        (torch.bfloat16, True),
        (torch.float16, True),
    ):
        x = torch.zeros(2, 1, 4, 4, dtype=dtype)
        raster = (x[:1].clone(), torch.ones(1, 1, 4, 4, dtype=torch.uint8)) if known else (None, None)
        tag = str(dtype).removeprefix("torch.") + ("+known" if known else "")
        yield tag, ddim_step_triton, (x, x, table, step, x, True, 1.0, *raster)
