"""Triton condition merge (spec: ``reference/merge_condition.py``).

Performance envelope: one streaming pass copying (S, M) into (S′, M′) with the sample rule, then
one scattered pass over the B·P boost points; both memory-bound and tiny next to the network.
No host sync: graph-capturable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import triton
import triton.language as tl

from ._limits import check_launch


@triton.jit
def _merge_fill_kernel(S_ptr, M_ptr, S_out_ptr, M_out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    s = tl.load(S_ptr + offs, mask=mask, other=0.0)
    m = tl.load(M_ptr + offs, mask=mask, other=0.0)
    # S′ = S where M > 0 else 0;  M′ = maximum(M, 0) (NaN kept)
    tl.store(S_out_ptr + offs, tl.where(m > 0, s, 0.0), mask=mask)
    tl.store(M_out_ptr + offs, tl.where((m != m) | (m > 0), m, 0.0), mask=mask)


@triton.jit
def _merge_points_kernel(R_ptr, points_ptr, S_ptr, M_ptr, S_out_ptr, M_out_ptr, P, H, W, BLOCK: tl.constexpr):
    b = tl.program_id(1).to(tl.int64)
    j = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_range = j < P
    p = points_ptr + (b * P + j) * 2
    r = tl.load(p, mask=in_range, other=-1)
    c = tl.load(p + 1, mask=in_range, other=-1)
    ok = in_range & (r >= 0) & (r < H) & (c >= 0) & (c < W)
    lin = b * H * W + tl.where(ok, r * W + c, 0)
    m = tl.load(M_ptr + lin, mask=ok, other=0.0)
    s = tl.load(S_ptr + lin, mask=ok, other=0.0)
    R = tl.load(R_ptr + lin, mask=ok, other=0.0)
    # R̂ at the boost point unless a real sample is there (the samples win); M′ = maximum(M, 1)
    tl.store(S_out_ptr + lin, tl.where(m > 0, s, R), mask=ok)
    tl.store(M_out_ptr + lin, tl.where((m != m) | (m > 1), m, 1.0), mask=ok)


def merge_condition_triton(
    R_hat: torch.Tensor, points: torch.Tensor, S: torch.Tensor, M: torch.Tensor, block: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    B, H, W = R_hat.shape
    P = points.shape[1]
    S_prime, M_prime = torch.empty_like(S), torch.empty_like(M)
    n = S.numel()
    check_launch("merge_condition", {"maps": B})
    _merge_fill_kernel[(triton.cdiv(n, block),)](S, M, S_prime, M_prime, n, BLOCK=block)
    if P > 0:
        _merge_points_kernel[(triton.cdiv(P, 128), B)](
            R_hat, points, S, M, S_prime, M_prime, P, H, W, BLOCK=128
        )
    return S_prime, M_prime


def aot_examples() -> Iterator[tuple[str, Callable[..., object], tuple]]:
    """A small launch (tag, launcher, args) whose kernel signatures ``kernels/_aot.py`` compiles."""
    R_hat = torch.zeros(1, 8, 8)
    points = torch.tensor([[[1, 2], [-1, -1]]], dtype=torch.int64)
    yield "float32", merge_condition_triton, (R_hat, points, torch.zeros_like(R_hat), torch.zeros_like(R_hat))
