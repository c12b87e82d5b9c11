"""Reference election scoring (paper §IV-C; DESIGN §1 "Election block").

This module is the specification of the fused ``elect`` op: the C++, CUDA and Triton kernels
match :func:`elect_ref` (same integer geometry tables, same tie rules) and are tested against it
in float64.

For each map b and candidate k (``x = candidates[b, k]``, model space, 1 unit = db_span/2 dB):

* open pixels: ``open = (buildings == 0)``.
* sample error ``L_s(k) = Σ M·(x − S)² / max(Σ M, 1)``.
* correction (the documented form of eq. 21, whose exact form the paper's text omits):
  ``D(k) = Σ open·(x − R̂)² / max(Σ open, 1)`` and ``d(k) = L_s(k) + α_b·D(k)``, with α_b
  predicted per map by the correction ResNet.
* transmitters: open pixels that are 3×3 local maxima of x over their open neighbours (building
  and off-grid neighbours are ignored; ties as in the critical-point NMS: a pixel must be > its
  lower-linear-index neighbours and ≥ its higher ones, so on a plateau the lowest index wins) with
  ``x ≥ max_open(x) − tx_drop`` (``tx_drop = tx_drop_db·2/db_span``); the ``n_tx`` highest are
  kept (ties: lower linear index), in a fixed-capacity list with a valid flag.
* Friis rings (eq. 25 idea): for each valid transmitter (r0, c0), each radius r_j of
  ``ring_radii`` and each angle θ_a = 2π·a/n_angles, the ring point is
  ``(r0 + floor(r_j·sin θ_a + 0.5), c0 + floor(r_j·cos θ_a + 0.5))`` (round half up, computed
  once in float64 into an integer table shared by every kernel, see :func:`ring_offsets`).
  Points off the grid or on buildings are skipped. ``m_j`` = mean of x over the ring's valid
  points; expected ``m_j = m_1 − 20·log10(r_j/r_1)·2/db_span`` (free-space decay anchored at the
  first radius). ring_term = mean over (valid tx, j > 1, ring j and ring 1 both non-empty) of
  ``(m_j − expected_j)²``; 0 when there is no such pair.
* ray probes: from each valid transmitter, ``n_rays`` rays at θ_q = 2π·q/n_rays; step s ≥ 1
  visits ``p_s = (r0 + floor(s·sin θ_q + 0.5), c0 + floor(s·cos θ_q + 0.5))`` (integer table
  :func:`ray_offsets`, s ≤ H + W). A ray stops before the first p_s that is off the grid or on a
  building. Every visited step counts in ``steps``; it is *volatile* when
  ``|x(p_s) − x(p_{s−1})| > tau`` (``tau = tau_db·2/db_span``). ray_term = Σ volatile / max(Σ steps, 1)
  over all rays of all valid transmitters of the candidate.
* ``I(k) = ring_term + gamma·ray_term``; ``score(k) = d(k) + lam·I(k)``.
* ``elected = argmin_k score`` (ties: lower k; NaN scores count as +inf).
* ``spread_db`` = per-pixel population standard deviation of x over the K candidates × db_span/2
  (dB), 0 on buildings.

Everything is batched tensor code with fixed shapes (no host sync).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from .critical_points import nms3x3


@dataclass(frozen=True)
class ElectionParams:
    """Hyper-parameters of the election (DESIGN §1; the papers leave them blank).

    Attributes:
        db_span: P_MAX − P_MIN in dB; one model-space unit is ``db_span/2`` dB.
        ring_radii: Friis ring radii in pixels, increasing; the first one anchors the decay.
        n_angles: points sampled per ring.
        n_tx: transmitter capacity per candidate (fixed shape).
        tx_drop_db: a transmitter is at most this many dB below the candidate's open maximum.
        n_rays: probe rays per transmitter.
        tau_db: volatility threshold of one unit ray step, in dB.
        lam: weight λ of the physics indicator I(k) in the score.
        gamma: weight of the ray term inside I(k).
    """

    db_span: float = 120.0
    ring_radii: tuple[int, ...] = (3, 6, 12, 24)
    n_angles: int = 16
    n_tx: int = 3
    tx_drop_db: float = 6.0
    n_rays: int = 16
    tau_db: float = 6.0
    lam: float = 1.0
    gamma: float = 1.0

    def __post_init__(self):
        radii = tuple(int(r) for r in self.ring_radii)
        object.__setattr__(self, "ring_radii", radii)
        if not self.db_span > 0:
            raise ValueError(f"db_span must be > 0, got {self.db_span}")
        if len(radii) == 0 or radii[0] < 1 or any(b <= a for a, b in zip(radii, radii[1:])):
            raise ValueError(f"ring_radii must be increasing positive integers, got {radii}")
        for name in ("n_angles", "n_tx", "n_rays"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.tx_drop_db < 0 or self.tau_db < 0:
            raise ValueError("tx_drop_db and tau_db must be >= 0")

    @property
    def unit(self) -> float:
        """Model-space units per dB."""
        return 2.0 / self.db_span

    @property
    def tx_drop(self) -> float:
        return self.tx_drop_db * self.unit

    @property
    def tau(self) -> float:
        return self.tau_db * self.unit


def _round_half_up(v: torch.Tensor) -> torch.Tensor:
    return torch.floor(v + 0.5).to(torch.int64)


@lru_cache(maxsize=64)
def _ring_offsets_cpu(radii: tuple[int, ...], n_angles: int) -> torch.Tensor:
    theta = 2.0 * math.pi * torch.arange(n_angles, dtype=torch.float64) / n_angles
    r = torch.tensor(radii, dtype=torch.float64)[:, None]
    return torch.stack([_round_half_up(r * torch.sin(theta)), _round_half_up(r * torch.cos(theta))], -1)


@lru_cache(maxsize=64)
def _ray_offsets_cpu(n_rays: int, max_steps: int) -> torch.Tensor:
    theta = 2.0 * math.pi * torch.arange(n_rays, dtype=torch.float64) / n_rays
    s = torch.arange(max_steps + 1, dtype=torch.float64)[None, :]
    return torch.stack(
        [_round_half_up(s * torch.sin(theta)[:, None]), _round_half_up(s * torch.cos(theta)[:, None])], -1
    )


def ring_offsets(params: ElectionParams) -> torch.Tensor:
    """Integer ring-point offsets ``int64 [R, n_angles, 2]`` (d_row, d_col), CPU."""
    return _ring_offsets_cpu(params.ring_radii, int(params.n_angles))


def ray_offsets(params: ElectionParams, max_steps: int) -> torch.Tensor:
    """Integer ray-step offsets ``int64 [n_rays, max_steps + 1, 2]`` (step 0 is the tx), CPU."""
    return _ray_offsets_cpu(int(params.n_rays), int(max_steps))


def friis_drop(params: ElectionParams) -> torch.Tensor:
    """Expected ring-mean drop from ring 1 to ring j, model units, ``float64 [R]`` (0 for j = 1)."""
    r = torch.tensor(params.ring_radii, dtype=torch.float64)
    return 20.0 * torch.log10(r / r[0]) * params.unit


def _gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x ``[B, K, H, W]`` at integer positions ``[B, K, *]`` (clamped into the grid)."""
    B, K, H, W = x.shape
    lin = rows.clamp(0, H - 1) * W + cols.clamp(0, W - 1)
    return x.reshape(B, K, H * W).gather(2, lin.reshape(B, K, -1)).reshape(rows.shape)


def detect_transmitters(
    x: torch.Tensor, open_: torch.Tensor, params: ElectionParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transmitters of each candidate: rows, cols ``int64 [B, K, n_tx]`` and valid ``bool``."""
    B, K, H, W = x.shape
    neg_inf = torch.tensor(float("-inf"), dtype=x.dtype, device=x.device)
    x_open = torch.where(open_, x, neg_inf)
    max_open = x_open.amax(dim=(-2, -1), keepdim=True)
    is_max = nms3x3(x_open.reshape(B * K, H, W)).reshape(B, K, H, W)
    is_tx = is_max & open_ & (x >= max_open - params.tx_drop)
    score = torch.where(is_tx, x, neg_inf).reshape(B, K, H * W)
    # Stable descending sort = ties to the lower linear index.
    order = torch.sort(score, dim=2, descending=True, stable=True).indices[..., : params.n_tx]
    valid = score.gather(2, order) > float("-inf")
    if params.n_tx > H * W:
        pad = params.n_tx - H * W
        order = torch.nn.functional.pad(order, (0, pad))
        valid = torch.nn.functional.pad(valid, (0, pad), value=False)
    return order // W, order % W, valid


def sample_error(x: torch.Tensor, S: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``L_s(k) = Σ M·(x − S)² / max(Σ M, 1)``: candidates ``x [B, K, H, W]``, sample raster and
    mask ``[B, H, W]`` → ``[B, K]`` in x's dtype."""
    S_, M_ = (t.to(x.dtype).unsqueeze(1) for t in (S, M))
    return (M_ * (x - S_) ** 2).sum((-2, -1)) / M_.sum((-2, -1)).clamp_min(1.0)


def open_mse(x: torch.Tensor, ref: torch.Tensor, buildings: torch.Tensor) -> torch.Tensor:
    """``Σ open·(x − ref)² / max(Σ open, 1)`` over the open pixels: with ``ref = R̂`` the
    correction distance ``D(k)``. ``x [B, K, H, W]``, ``ref`` and ``buildings`` ``[B, H, W]`` →
    ``[B, K]`` in x's dtype."""
    open_f = (buildings != 0).logical_not().unsqueeze(1).to(x.dtype)
    err = open_f * (x - ref.to(x.dtype).unsqueeze(1)) ** 2
    return err.sum((-2, -1)) / open_f.sum((-2, -1)).clamp_min(1.0)


def elect_ref(
    candidates: torch.Tensor,
    R_hat: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    buildings: torch.Tensor,
    alpha: torch.Tensor,
    params: ElectionParams = ElectionParams(),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Score the K candidates of each map and elect one (see the module docstring for the formula).

    Args:
        candidates: ``[B, K, H, W]`` generated maps x_k (model space).
        R_hat: ``[B, H, W]`` boost-block rough map R̂.
        S, M: ``[B, H, W]`` sample raster and mask (real samples only).
        buildings: ``[B, H, W]`` (1 = building), any numeric or bool dtype.
        alpha: ``[B]`` correction factor α per map.

    Returns:
        scores ``[B, K]``, elected ``int64 [B]``, spread_db ``[B, H, W]``; floating outputs in the
        compute dtype (float64 for float64 candidates, else float32).
    """
    B, K, H, W = candidates.shape
    ct = torch.float64 if candidates.dtype == torch.float64 else torch.float32
    x = candidates.to(ct)
    open_ = (buildings != 0).logical_not().unsqueeze(1)  # [B, 1, H, W]

    # d(k) = L_s(k) + α·D(k)
    d = sample_error(x, S, M) + alpha.to(ct)[:, None] * open_mse(x, R_hat, buildings)

    tx_r, tx_c, tx_ok = detect_transmitters(x, open_, params)  # [B, K, T]
    open_k = open_.expand(B, K, H, W)

    def sample(rows, cols):
        """x and 'inside the grid and open' at integer positions [B, K, ...]."""
        inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
        ok = inside & _gather(open_k, rows, cols)
        return _gather(x, rows, cols), ok

    # Friis rings: [B, K, T, R, A]
    ro = ring_offsets(params).to(x.device)
    rows = tx_r[..., None, None] + ro[..., 0]
    cols = tx_c[..., None, None] + ro[..., 1]
    val, ok = sample(rows, cols)
    ok = ok & tx_ok[..., None, None]
    n = ok.sum(-1)  # [B, K, T, R]
    m = torch.where(ok, val, torch.zeros_like(val)).sum(-1) / n.clamp_min(1).to(ct)
    expected = m[..., :1] - friis_drop(params).to(device=x.device, dtype=ct)[1:]
    term_ok = (n[..., 1:] > 0) & (n[..., :1] > 0)
    ring_sq = torch.where(term_ok, (m[..., 1:] - expected) ** 2, torch.zeros_like(expected))
    ring_term = ring_sq.sum((-2, -1)) / term_ok.sum((-2, -1)).clamp_min(1).to(ct)

    # Ray probes: [B, K, T, Q, L + 1], step 0 at the transmitter
    L = H + W
    rays = ray_offsets(params, L).to(x.device)
    rows = tx_r[..., None, None] + rays[..., 0]
    cols = tx_c[..., None, None] + rays[..., 1]
    val, ok = sample(rows, cols)
    alive = torch.cumprod(ok.to(torch.int64), dim=-1).bool() & tx_ok[..., None, None]
    step = alive[..., 1:]
    volatile = step & ((val[..., 1:] - val[..., :-1]).abs() > params.tau)
    ray_term = volatile.sum((-3, -2, -1)).to(ct) / step.sum((-3, -2, -1)).clamp_min(1).to(ct)

    I = ring_term + params.gamma * ray_term
    scores = d + params.lam * I
    # first minimum = lower k; a NaN score counts as +inf (a broken candidate never wins)
    elected = torch.argmin(torch.where(scores.isnan(), float("inf"), scores), dim=1)
    spread = x.std(dim=1, unbiased=False) * (params.db_span / 2.0)
    spread_db = torch.where(open_[:, 0], spread, torch.zeros_like(spread))
    return scores, elected, spread_db
