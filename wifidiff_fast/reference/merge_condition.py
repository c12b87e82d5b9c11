"""Reference condition merge (boost block, paper §IV-A; DESIGN §1 step 4): the specification of the
fused ``merge_condition`` op.

The sparse condition (S, M) gains the rough map's values at the boost points (critical points
from :mod:`.critical_points` plus random open pixels), and the real samples are written last, so
a measurement always wins over R̂ at the same pixel:

* ``S′ = S`` where ``M > 0``, else R̂ at a boost point, else 0;
* ``M′ = max(M, 1)`` at a boost point, else ``M``;
* slots holding −1 are empty; duplicate points are harmless (they write the same value).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def merge_condition_ref(
    R_hat: torch.Tensor, points: torch.Tensor, S: torch.Tensor, M: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """S′, M′ (DESIGN §1 step 4): R̂ at the boost points, then the real samples written last.

    Args:
        R_hat, S, M: ``[B, H, W]``; points: ``int64 [B, P, 2]`` with −1 marking empty slots.
    """
    B, H, W = R_hat.shape
    ok = points[..., 0] >= 0
    # Empty slots scatter into a spare column H·W that is dropped afterwards, so they can never
    # overwrite a real point (scatter order among duplicate indices is unspecified).
    lin = torch.where(
        ok,
        points[..., 0].clamp_min(0) * W + points[..., 1].clamp_min(0),
        torch.full_like(points[..., 0], H * W),
    )
    flat_R = F.pad(R_hat.reshape(B, -1), (0, 1))
    S_boost = torch.zeros_like(flat_R).scatter(1, lin, flat_R.gather(1, lin))[:, : H * W].reshape(B, H, W)
    M_boost = torch.zeros_like(flat_R).scatter(1, lin, torch.ones_like(flat_R))[:, : H * W].reshape(B, H, W)
    S_prime = torch.where(M > 0, S, S_boost)
    M_prime = torch.maximum(M_boost, M)
    return S_prime, M_prime
