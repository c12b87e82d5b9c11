"""Triton election scoring (spec: ``wifidiff_fast.reference.elect.elect_ref``).

Performance envelope: ``_elect_score_kernel`` runs one program per candidate: a reduction pass
(L_s, D, the open maximum), ``N_TX`` selection passes for the transmitters (3×3 NMS recomputed on
the fly: the candidate stays in L2), the Friis rings as one [n_rings, n_angles] tile per transmitter, and all
rays of all transmitters as lanes of one vector marched until every ray has stopped. It is bound
by latency for the rays, not by bandwidth: B·K programs of a few hundred microseconds at most.
``_elect_spread_kernel`` streams the K candidates per pixel block (two passes). (Scalar-with-vector boolean
logic goes through ``tl.where``: Triton 3.7's interpreter cannot broadcast ``vector & 0-d``.)
Scalars that
decide discrete outcomes (thresholds, |Δx| > τ) are compared in fp64, as the C++ kernels do;
the arg-min (NaN = +inf, ties to the lower k) runs on the fp64 scores with ``torch.argmin``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache

import torch
import triton
import triton.language as tl

from ._common import nms_keep
from ._limits import check_launch


@triton.jit
def _elect_score_kernel(
    x_ptr,
    R_hat_ptr,
    S_ptr,
    M_ptr,
    bld_ptr,
    alpha_ptr,
    ring_ptr,
    drop_ptr,
    ray_ptr,
    scal_ptr,
    score_ptr,
    K,
    H,
    W,
    n_rings,
    n_angles,
    n_rays,
    ray_len,
    N_TX: tl.constexpr,
    N_TX_P2: tl.constexpr,
    RINGS_P2: tl.constexpr,
    ANGLES_P2: tl.constexpr,
    RAYS_P2: tl.constexpr,
    BLOCK: tl.constexpr,
):
    bk = tl.program_id(0).to(tl.int64)
    b = bk // K
    n = H * W
    xb = x_ptr + bk * n
    mb = b * n
    tx_drop = tl.load(scal_ptr + 0)
    tau = tl.load(scal_ptr + 1)
    lam = tl.load(scal_ptr + 2)
    gamma = tl.load(scal_ptr + 3)
    f64 = tl.float64
    neg_inf = float("-inf")

    # 1. L_s = Σ M (x − S)², D = Σ open (x − R̂)², and the open maximum (fp64 accumulators)
    ls = tl.zeros([BLOCK], dtype=f64)
    msum = tl.zeros([BLOCK], dtype=f64)
    dsum = tl.zeros([BLOCK], dtype=f64)
    osum = tl.zeros([BLOCK], dtype=f64)
    mx = tl.full([BLOCK], neg_inf, dtype=f64)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n
        x = tl.load(xb + offs, mask=mask, other=0.0).to(f64)
        s = tl.load(S_ptr + mb + offs, mask=mask, other=0.0).to(f64)
        m = tl.load(M_ptr + mb + offs, mask=mask, other=0.0).to(f64)
        r = tl.load(R_hat_ptr + mb + offs, mask=mask, other=0.0).to(f64)
        is_open = mask & (tl.load(bld_ptr + mb + offs, mask=mask, other=1) == 0)
        ls += m * (x - s) * (x - s)
        msum += m
        dsum += tl.where(is_open, (x - r) * (x - r), 0.0)
        osum += is_open.to(f64)
        mx = tl.maximum(mx, tl.where(is_open, x, neg_inf))
    thr = tl.max(mx, axis=0) - tx_drop

    # 2. transmitters: N_TX passes, each takes the best (value desc, index asc) open 3×3 maximum
    #    above thr that comes after the previous pick in that order
    tslot = tl.arange(0, N_TX_P2)
    tx_idx = tl.full([N_TX_P2], -1, dtype=tl.int64)
    prev_v = float("inf")
    prev_i = -1
    for t in tl.static_range(N_TX):
        best_v = tl.full([], neg_inf, dtype=f64)
        best_i = tl.full([], 1 << 62, dtype=tl.int64)
        for start in range(0, n, BLOCK):
            idx = (start + tl.arange(0, BLOCK)).to(tl.int64)
            mask = idx < n
            v = tl.load(xb + idx, mask=mask, other=0.0).to(f64)
            ok = mask & (tl.load(bld_ptr + mb + idx, mask=mask, other=1) == 0) & (v >= thr)
            ok = ok & ((v < prev_v) | ((v == prev_v) & (idx > prev_i)))
            row = idx // W
            col = idx % W
            for dr in tl.static_range(-1, 2):
                for dc in tl.static_range(-1, 2):
                    if dr != 0 or dc != 0:
                        rr = row + dr
                        cc = col + dc
                        inside = ok & (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
                        nidx = rr * W + cc
                        nv = tl.load(xb + nidx, mask=inside, other=0.0).to(f64)
                        nb = tl.load(bld_ptr + mb + nidx, mask=inside, other=1)
                        nv = tl.where(inside & (nb == 0), nv, neg_inf)
                        ok = nms_keep(ok, v, nv, dr, dc)
            vals = tl.where(ok, v, neg_inf)
            bm = tl.max(vals, axis=0)
            bi = tl.min(tl.where(ok & (vals == bm), idx, 1 << 62), axis=0)
            take = (bm > best_v) | ((bm == best_v) & (bi < best_i))
            best_i = tl.where(take, bi, best_i)
            best_v = tl.maximum(best_v, bm)
        found = best_v > neg_inf
        tx_idx = tl.where(tslot == t, tl.where(found, best_i, -1), tx_idx)
        prev_v = tl.where(found, best_v, neg_inf)
        prev_i = tl.where(found, best_i, 1 << 62)

    # 3. Friis rings: one [n_rings, n_angles] tile per transmitter; expected m_j = m_1 − drop_j
    jj = tl.arange(0, RINGS_P2)
    aa = tl.arange(0, ANGLES_P2)
    tile = (jj[:, None] < n_rings) & (aa[None, :] < n_angles)
    ring_d = ring_ptr + (jj[:, None] * n_angles + aa[None, :]) * 2
    off_r = tl.load(ring_d, mask=tile, other=0)
    off_c = tl.load(ring_d + 1, mask=tile, other=0)
    drop = tl.load(drop_ptr + jj, mask=jj < n_rings, other=0.0)
    ring_sq = tl.zeros([], dtype=f64)
    ring_terms = tl.zeros([], dtype=f64)
    for t in tl.static_range(N_TX):
        ti = tl.sum(tl.where(tslot == t, tx_idx, 0), axis=0)  # −1: no transmitter in slot t
        valid = ti >= 0
        pr = ti // W + off_r
        pc = ti % W + off_c
        ok = tl.where(valid, tile & (pr >= 0) & (pr < H) & (pc >= 0) & (pc < W), False)
        lin = pr * W + pc
        ok = ok & (tl.load(bld_ptr + mb + lin, mask=ok, other=1) == 0)
        xv = tl.load(xb + lin, mask=ok, other=0.0).to(f64)
        cnt = tl.sum(ok.to(f64), axis=1)
        m_j = tl.sum(tl.where(ok, xv, 0.0), axis=1) / tl.maximum(cnt, 1.0)
        m_1 = tl.sum(tl.where(jj == 0, m_j, 0.0), axis=0)
        n_1 = tl.sum(tl.where(jj == 0, cnt, 0.0), axis=0)
        term = tl.where(n_1 > 0, (jj >= 1) & (jj < n_rings) & (cnt > 0), False)
        dev = m_j - (m_1 - drop)
        ring_sq += tl.sum(tl.where(term, dev * dev, 0.0), axis=0)
        ring_terms += tl.sum(term.to(f64), axis=0)

    # 4. ray probes: lanes = (transmitter, ray), marched together until every ray has stopped
    lane = tl.arange(0, N_TX_P2 * RAYS_P2)
    lt = lane // RAYS_P2
    lq = lane % RAYS_P2
    l_idx = tl.sum(tl.where(lt[:, None] == tslot[None, :], tx_idx[None, :], 0), axis=1)
    alive = (lt < N_TX) & (lq < n_rays) & (l_idx >= 0)
    r0 = l_idx // W
    c0 = l_idx % W
    prev = tl.load(xb + tl.where(alive, l_idx, 0), mask=alive, other=0.0).to(f64)
    steps = tl.zeros([N_TX_P2 * RAYS_P2], dtype=f64)
    vol = tl.zeros([N_TX_P2 * RAYS_P2], dtype=f64)
    s = tl.full([], 1, dtype=tl.int32)
    go = (s <= ray_len) & (tl.sum(alive.to(tl.int32), axis=0) > 0)
    while go:
        step_off = ray_ptr + (lq * (ray_len + 1) + s) * 2
        ray_r = r0 + tl.load(step_off, mask=alive, other=0)
        ray_c = c0 + tl.load(step_off + 1, mask=alive, other=0)
        alive = alive & (ray_r >= 0) & (ray_r < H) & (ray_c >= 0) & (ray_c < W)
        ray_lin = ray_r * W + ray_c
        alive = alive & (tl.load(bld_ptr + mb + ray_lin, mask=alive, other=1) == 0)
        ray_v = tl.load(xb + ray_lin, mask=alive, other=0.0).to(f64)
        steps += alive.to(f64)
        vol += (alive & (tl.abs(ray_v - prev) > tau)).to(f64)
        prev = tl.where(alive, ray_v, prev)
        s += 1
        go = (s <= ray_len) & (tl.sum(alive.to(tl.int32), axis=0) > 0)

    # 5. score = L_s + α·D + λ·(ring_term + γ·ray_term)
    alpha = tl.load(alpha_ptr + b).to(f64)
    L_s = tl.sum(ls, axis=0) / tl.maximum(tl.sum(msum, axis=0), 1.0)
    D = tl.sum(dsum, axis=0) / tl.maximum(tl.sum(osum, axis=0), 1.0)
    ring = ring_sq / tl.maximum(ring_terms, 1.0)
    ray = tl.sum(vol, axis=0) / tl.maximum(tl.sum(steps, axis=0), 1.0)
    tl.store(score_ptr + bk, L_s + alpha * D + lam * (ring + gamma * ray))


@triton.jit
def _elect_spread_kernel(x_ptr, bld_ptr, spread_ptr, K, n, scale, BLOCK: tl.constexpr):
    b = tl.program_id(1).to(tl.int64)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    base = x_ptr + b * K * n + offs
    # population std over the K candidates, two passes in fp32
    s1 = tl.zeros([BLOCK], dtype=tl.float32)
    for k in range(K):
        s1 += tl.load(base + k * n, mask=mask, other=0.0).to(tl.float32)
    kf = K * 1.0
    mean = tl.div_rn(s1, kf)  # IEEE division and root, as the CPU paths (not the fast GPU ones)
    s2 = tl.zeros([BLOCK], dtype=tl.float32)
    for k in range(K):
        d = tl.load(base + k * n, mask=mask, other=0.0).to(tl.float32) - mean
        s2 += d * d
    is_open = tl.load(bld_ptr + b * n + offs, mask=mask, other=1) == 0
    out = tl.where(is_open, tl.sqrt_rn(tl.div_rn(s2, kf)) * scale, 0.0)
    tl.store(spread_ptr + b * n + offs, out, mask=mask)


@lru_cache(maxsize=32)
def _scalars(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, device=device)


def elect_triton(
    candidates: torch.Tensor,
    R_hat: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    buildings: torch.Tensor,
    alpha: torch.Tensor,
    ring_off: torch.Tensor,
    ring_drop: torch.Tensor,
    ray_off: torch.Tensor,
    n_tx: int,
    tx_drop: float,
    tau: float,
    lam: float,
    gamma: float,
    spread_scale: float,
    block: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launcher: inputs validated by ``wifidiff_fast.ops.elect``; tables from ``geometry_tables``."""
    B, K, H, W = candidates.shape
    n_rings, n_angles = ring_off.shape[:2]
    n_rays = ray_off.shape[0]
    dev = candidates.device
    check_launch("elect", {"maps": B}, int32_extent=K * H * W)
    scal = _scalars((float(tx_drop), float(tau), float(lam), float(gamma)), dev)
    s64 = torch.empty((B, K), dtype=torch.float64, device=dev)
    p2 = triton.next_power_of_2
    _elect_score_kernel[(B * K,)](
        candidates,
        R_hat,
        S,
        M,
        buildings,
        alpha,
        ring_off,
        ring_drop,
        ray_off,
        scal,
        s64,
        K,
        H,
        W,
        n_rings,
        n_angles,
        n_rays,
        H + W,
        N_TX=int(n_tx),
        N_TX_P2=p2(int(n_tx)),
        RINGS_P2=p2(n_rings),
        ANGLES_P2=p2(n_angles),
        RAYS_P2=p2(n_rays),
        BLOCK=block,
    )
    spread = torch.empty((B, H, W), dtype=torch.float32, device=dev)
    n = H * W
    _elect_spread_kernel[(triton.cdiv(n, block), B)](
        candidates, buildings, spread, K, n, float(spread_scale), BLOCK=block
    )
    key = torch.where(torch.isnan(s64), torch.full_like(s64, float("inf")), s64)
    return s64.float(), torch.argmin(key, dim=1), spread


def aot_examples() -> Iterator[tuple[str, Callable[..., object], tuple]]:
    """Small launches (tag, launcher, args) whose kernel signatures ``kernels/_aot.py`` compiles for
    the GPU: the default election parameters, every candidate dtype."""
    from ..reference.elect import ElectionParams, friis_drop, ray_offsets, ring_offsets

    p = ElectionParams()
    B, K, H, W = 1, 2, 8, 8
    geometry = (
        ring_offsets(p).to(torch.int32),
        friis_drop(p).to(torch.float64),
        ray_offsets(p, H + W).to(torch.int32).contiguous(),
    )
    maps = [torch.zeros(B, H, W) for _ in range(3)]
    buildings = torch.zeros(B, H, W, dtype=torch.uint8)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        candidates = torch.zeros(B, K, H, W, dtype=dtype)
        yield (
            str(dtype).removeprefix("torch."),
            elect_triton,
            (
                candidates,
                *maps,
                buildings,
                torch.ones(B),
                *geometry,
                p.n_tx,
                p.tx_drop,
                p.tau,
                p.lam,
                p.gamma,
                p.db_span / 2.0,
            ),
        )
