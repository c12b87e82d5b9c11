"""Reference critical-point detector (boost block, paper §IV-A; DESIGN §1 step 2).

Structure tensor of the rough map R̂ with a Gaussian window,

    J = G_σ * [[I_x², I_x·I_y], [I_x·I_y, I_y²]],

closed-form eigenvalues λ1 ≥ λ2, response = λ2 (large only where the map changes in two
directions: corners of shadows, transmitter peaks, street crossings), 3×3 non-maximum suppression,
buildings excluded, then a FIXED-capacity top-k — never a data-dependent shape.

Conventions shared with every kernel (they are part of the specification):
* gradients: central differences ``I_x[r,c] = (R[r,c+1] − R[r,c−1])/2`` with replicate borders
  (x = column, y = row);
* window: separable Gaussian, radius ``ceil(3σ)``, weights normalised to sum 1, replicate borders;
* NMS: a pixel survives when its response is ≥ every 3×3 neighbour with a higher linear index and
  > every neighbour with a lower one (so on a plateau the lowest linear index wins);
* a survivor is valid when it is not a building and its response > ``min_response``;
* top-k by response, ties to the lower linear index; empty slots hold point (−1, −1), response 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(
    sigma: float, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ceil(3σ)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def structure_tensor_response(R_hat: torch.Tensor, sigma: float) -> torch.Tensor:
    """λ2 of the windowed structure tensor, ``[B, H, W]`` → ``[B, H, W]`` (same dtype)."""
    x = R_hat.unsqueeze(1)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    I_x = (xp[..., 1:-1, 2:] - xp[..., 1:-1, :-2]) * 0.5
    I_y = (xp[..., 2:, 1:-1] - xp[..., :-2, 1:-1]) * 0.5
    products = torch.cat([I_x * I_x, I_x * I_y, I_y * I_y], dim=1)  # [B, 3, H, W]
    g = gaussian_kernel1d(sigma, dtype=R_hat.dtype, device=R_hat.device)
    r = g.numel() // 2
    kh = g.view(1, 1, 1, -1).expand(3, 1, 1, -1)
    kv = g.view(1, 1, -1, 1).expand(3, 1, -1, 1)
    J = F.conv2d(F.pad(products, (r, r, 0, 0), mode="replicate"), kh, groups=3)
    J = F.conv2d(F.pad(J, (0, 0, r, r), mode="replicate"), kv, groups=3)
    a, b, c = J[:, 0], J[:, 1], J[:, 2]
    # λ2 = (a + c)/2 − sqrt(((a − c)/2)² + b²), clamped at 0 against round-off
    lam2 = (a + c) * 0.5 - torch.sqrt(((a - c) * 0.5) ** 2 + b * b)
    return lam2.clamp_min(0.0)


def nms3x3(response: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, H, W]``: survivors of 3×3 non-maximum suppression (ties: lower index wins)."""
    B, H, W = response.shape
    pad = F.pad(response.unsqueeze(1), (1, 1, 1, 1), value=float("-inf"))[:, 0]
    keep = torch.ones_like(response, dtype=torch.bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            neighbour = pad[:, 1 + dr : 1 + dr + H, 1 + dc : 1 + dc + W]
            earlier = dr < 0 or (dr == 0 and dc < 0)  # neighbour has a lower linear index
            keep &= (response > neighbour) if earlier else (response >= neighbour)
    return keep


def critical_points_ref(
    R_hat: torch.Tensor,
    buildings: torch.Tensor,
    sigma: float = 1.5,
    capacity: int = 64,
    min_response: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``capacity`` critical points of each map.

    Args:
        R_hat: ``[B, H, W]`` rough map (model space).
        buildings: ``[B, H, W]`` (1 = building), any numeric/bool dtype.

    Returns:
        points ``int64 [B, capacity, 2]`` (row, col), −1 in empty slots;
        response ``[B, capacity]`` (R_hat's dtype), 0 in empty slots;
        count ``int64 [B]`` valid points per map.
    """
    B, H, W = R_hat.shape
    lam2 = structure_tensor_response(R_hat, sigma)
    valid = nms3x3(lam2) & (buildings == 0) & (lam2 > min_response)
    score = torch.where(valid, lam2, torch.full_like(lam2, -1.0)).reshape(B, H * W)
    # Stable descending sort = ties broken by the lower linear index.
    order = torch.sort(score, dim=1, descending=True, stable=True).indices[:, :capacity]
    top = score.gather(1, order)
    ok = top > 0
    count = ok.sum(dim=1)
    rows = torch.where(ok, order // W, torch.full_like(order, -1))
    cols = torch.where(ok, order % W, torch.full_like(order, -1))
    response = torch.where(ok, top, torch.zeros_like(top))
    if capacity > H * W:  # pad to the fixed capacity
        extra = capacity - H * W
        rows = F.pad(rows, (0, extra), value=-1)
        cols = F.pad(cols, (0, extra), value=-1)
        response = F.pad(response, (0, extra), value=0.0)
    return torch.stack([rows, cols], dim=-1), response, count


def random_points_ref(
    buildings: torch.Tensor, n_random: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n_random`` distinct open pixels per map, ``int64 [B, n_random, 2]`` (seeded, fixed shape).

    Uniform without replacement: the open pixels with the largest i.i.d. uniform scores.
    Maps with fewer open pixels than ``n_random`` repeat a valid point (harmless for the merge).
    """
    B, H, W = buildings.shape
    u = torch.rand(B, H * W, generator=generator, dtype=torch.float32, device="cpu").to(buildings.device)
    u = torch.where(buildings.reshape(B, -1) == 0, u, torch.full_like(u, -1.0))
    idx = torch.topk(u, n_random, dim=1).indices
    best = idx[:, :1].expand_as(idx)
    idx = torch.where(u.gather(1, idx) >= 0, idx, best)
    return torch.stack([idx // W, idx % W], dim=-1)
