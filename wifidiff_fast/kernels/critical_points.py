"""Triton critical-point detector (spec: ``reference/critical_points.py``).

Performance envelope: three stencil passes over the maps — (1) gradient products + horizontal
Gaussian window into a [B, 3, H, W] fp32 scratch, (2) vertical window + closed-form λ2, (3) 3×3
NMS + selection keys — then ``torch.topk`` over the int64 keys (unique per point, so the top-k is
exact and deterministic: larger response first, then lower linear index; fp64 responses are
ordered by their fp32 rounding) and a gather to decode them. Every pass is memory-bound; on an
H100 a 64×256² batch should take tens of microseconds per pass. No host sync: graph-capturable
after a first (warm-up) call has cached the window weights on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import lru_cache

import torch
import triton
import triton.language as tl

from ._common import map_tile, nms_keep
from ._limits import check_launch

# A selection key is (fp32 bits of the response) << 32 | (KEY_INDEX_MASK − linear index): larger
# keys are larger responses, then lower indices. The same layout as ``point_key`` and
# ``kKeyIndexMask`` in csrc/critical_points.h (tests/ops/test_critical_points.py checks they agree).
KEY_INDEX_MASK = 0xFFFFFFFF
_KEY_INDEX_MASK = tl.constexpr(KEY_INDEX_MASK)


@triton.jit
def _structure_h_kernel(
    R_ptr, hb_ptr, g_ptr, H, W, RAD: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr
):
    b, rows, cols, mask = map_tile(H, W, BLOCK_H, BLOCK_W)
    base = R_ptr + b * H * W
    r = tl.minimum(rows, H - 1)
    r_up = tl.maximum(r - 1, 0)
    r_dn = tl.minimum(r + 1, H - 1)
    acc_t = g_ptr.dtype.element_ty
    a_xx = tl.zeros((BLOCK_H, BLOCK_W), dtype=acc_t)
    a_xy = tl.zeros((BLOCK_H, BLOCK_W), dtype=acc_t)
    a_yy = tl.zeros((BLOCK_H, BLOCK_W), dtype=acc_t)
    # gradient products at column c + t (central differences, replicate borders), weighted by g_t
    for t in tl.static_range(2 * RAD + 1):
        c = tl.minimum(tl.maximum(cols + (t - RAD), 0), W - 1)
        c_l = tl.maximum(c - 1, 0)
        c_r = tl.minimum(c + 1, W - 1)
        i_x = (
            tl.load(base + r * W + c_r, mask=mask, other=0.0).to(acc_t)
            - tl.load(base + r * W + c_l, mask=mask, other=0.0).to(acc_t)
        ) * 0.5
        i_y = (
            tl.load(base + r_dn * W + c, mask=mask, other=0.0).to(acc_t)
            - tl.load(base + r_up * W + c, mask=mask, other=0.0).to(acc_t)
        ) * 0.5
        w = tl.load(g_ptr + t)
        a_xx += w * (i_x * i_x)
        a_xy += w * (i_x * i_y)
        a_yy += w * (i_y * i_y)
    out = hb_ptr + b * 3 * H * W + rows * W + cols
    tl.store(out, a_xx, mask=mask)
    tl.store(out + H * W, a_xy, mask=mask)
    tl.store(out + 2 * H * W, a_yy, mask=mask)


@triton.jit
def _lambda2_kernel(
    hb_ptr, lam_ptr, g_ptr, H, W, RAD: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr
):
    b, rows, cols, mask = map_tile(H, W, BLOCK_H, BLOCK_W)
    base = hb_ptr + b * 3 * H * W
    acc_t = g_ptr.dtype.element_ty
    a = tl.zeros((BLOCK_H, BLOCK_W), dtype=acc_t)
    bb = tl.zeros((BLOCK_H, BLOCK_W), dtype=acc_t)
    c = tl.zeros((BLOCK_H, BLOCK_W), dtype=acc_t)
    # vertical window over the horizontally blurred products (replicate borders)
    for t in tl.static_range(2 * RAD + 1):
        r = tl.minimum(tl.maximum(rows + (t - RAD), 0), H - 1)
        w = tl.load(g_ptr + t)
        p = base + r * W + cols
        a += w * tl.load(p, mask=mask, other=0.0)
        bb += w * tl.load(p + H * W, mask=mask, other=0.0)
        c += w * tl.load(p + 2 * H * W, mask=mask, other=0.0)
    # λ2 = (a + c)/2 − sqrt(((a − c)/2)² + b²), clamped at 0 (NaN stays NaN)
    # a correctly rounded root on the GPU too (tl.sqrt is sqrt.approx for fp32 there): λ2 is a
    # cancellation, and an approximate root turns exact 1-D structure (λ2 = 0) into false points
    h = (a - c) * 0.5
    if acc_t == tl.float64:
        root = tl.sqrt(h * h + bb * bb)  # sqrt.rn.f64
    else:
        root = tl.sqrt_rn(h * h + bb * bb)
    lam = (a + c) * 0.5 - root
    lam = tl.where(lam < 0, 0.0, lam)
    tl.store(lam_ptr + b * H * W + rows * W + cols, lam.to(lam_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _nms_keys_kernel(
    lam_ptr, bld_ptr, keys_ptr, H, W, min_response, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr
):
    b, rows, cols, mask = map_tile(H, W, BLOCK_H, BLOCK_W)
    base = lam_ptr + b * H * W
    v = tl.load(base + rows * W + cols, mask=mask, other=0.0)
    keep = mask
    # 3×3 NMS: > the neighbours before (row-major), >= the ones after; off-grid never competes
    for dr in tl.static_range(-1, 2):
        for dc in tl.static_range(-1, 2):
            if dr != 0 or dc != 0:
                rr = rows + dr
                cc = cols + dc
                inside = mask & (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
                n = tl.load(base + rr * W + cc, mask=inside, other=float("-inf"))
                keep = nms_keep(keep, v, n, dr, dc)
    idx = (rows * W + cols).to(tl.int64)
    bld = tl.load(bld_ptr + b * H * W + idx, mask=mask, other=1)
    keep = keep & (bld == 0) & (v > min_response)
    # key = fp32 bits of the response (positive: they order like the values) : ~index
    bits = v.to(tl.float32).to(tl.int32, bitcast=True).to(tl.int64)
    key = tl.where(keep, (bits << 32) | (_KEY_INDEX_MASK - idx), 0)
    tl.store(keys_ptr + b * H * W + idx, key, mask=mask)


@lru_cache(maxsize=32)
def _window(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    rad = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-rad, rad + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return (g / g.sum()).to(device=device, dtype=dtype)


def critical_points_triton(
    R_hat: torch.Tensor,
    buildings: torch.Tensor,
    sigma: float,
    capacity: int,
    min_response: float,
    block_h: int = 16,
    block_w: int = 64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launcher: inputs validated by ``wifidiff_fast.ops.critical_points`` (buildings uint8)."""
    B, H, W = R_hat.shape
    acc = torch.float64 if R_hat.dtype == torch.float64 else torch.float32
    g = _window(float(sigma), R_hat.device, acc)
    rad = (g.numel() - 1) // 2
    hb = torch.empty((B, 3, H, W), dtype=acc, device=R_hat.device)
    lam = torch.empty((B, H, W), dtype=acc, device=R_hat.device)
    keys = torch.empty((B, H * W), dtype=torch.int64, device=R_hat.device)
    grid = (triton.cdiv(W, block_w), triton.cdiv(H, block_h), B)
    check_launch("critical_points", {"row blocks": grid[1], "maps": B}, int32_extent=3 * H * W)
    _structure_h_kernel[grid](R_hat, hb, g, H, W, RAD=rad, BLOCK_H=block_h, BLOCK_W=block_w)
    _lambda2_kernel[grid](hb, lam, g, H, W, RAD=rad, BLOCK_H=block_h, BLOCK_W=block_w)
    _nms_keys_kernel[grid](lam, buildings, keys, H, W, min_response, BLOCK_H=block_h, BLOCK_W=block_w)
    return decode_keys(keys, lam, capacity, W, R_hat.dtype)


def decode_keys(
    keys: torch.Tensor, lam: torch.Tensor, capacity: int, W: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``capacity`` keys → points, responses (from the λ2 map) and counts; fixed shapes."""
    B, n = keys.shape
    top = torch.topk(keys, min(capacity, n), dim=1, largest=True, sorted=True).values
    if capacity > n:
        top = torch.nn.functional.pad(top, (0, capacity - n))
    ok = top > 0
    idx = torch.where(ok, KEY_INDEX_MASK - (top & KEY_INDEX_MASK), torch.zeros_like(top))
    resp = lam.reshape(B, n).gather(1, idx)
    rows = torch.where(ok, idx // W, -1)
    cols = torch.where(ok, idx % W, -1)
    response = torch.where(ok, resp, torch.zeros_like(resp)).to(dtype)
    return torch.stack([rows, cols], dim=-1), response, ok.sum(dim=1)


def aot_examples() -> Iterator[tuple[str, Callable[..., object], tuple]]:
    """Small launches (tag, launcher, args) whose kernel signatures ``kernels/_aot.py`` compiles for
    the GPU: every input dtype (fp64 runs the fp64 λ2 root)."""
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        R_hat = torch.linspace(-1, 1, 256, dtype=torch.float64).reshape(1, 16, 16).to(dtype)
        buildings = torch.zeros(1, 16, 16, dtype=torch.uint8)
        yield str(dtype).removeprefix("torch."), critical_points_triton, (R_hat, buildings, 1.5, 8, 1e-8)
