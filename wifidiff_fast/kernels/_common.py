"""Small ``@triton.jit`` pieces shared by the op kernels (the Triton side of ``csrc/common.h``)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def map_tile(H, W, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """This program's [BLOCK_H, BLOCK_W] tile of map b: grid (col blocks, row blocks, maps)."""
    pid_w, pid_h, b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    rows = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = pid_w * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    return b, rows, cols, (rows < H) & (cols < W)


@triton.jit
def nms_keep(keep, v, n, DR: tl.constexpr, DC: tl.constexpr):
    """The 3×3 NMS tie rule (common.h ``nms3x3_keep``): a pixel must beat the neighbours before
    it in row-major order strictly and the ones after it or equal, so a plateau keeps its first
    pixel (lower linear index)."""
    if DR < 0 or (DR == 0 and DC < 0):
        return keep & (v > n)
    else:
        return keep & (v >= n)
