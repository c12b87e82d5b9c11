"""Boost block (paper §IV-A): AttUnet → R̂ → critical points + random points → S′, M′.

``ops`` is the op namespace to use: ``wifidiff_fast.ops`` at inference (fused kernels through the
backend selection), :mod:`wifidiff_fast.reference` functions in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.symmetry import dihedral, dihedral_inverse
from ..models.features import boost_inputs
from ..reference.critical_points import critical_points_ref, random_points_ref
from ..reference.merge_condition import merge_condition_ref
from .params import BoostParams


@dataclass
class BoostOutput:
    R_hat: torch.Tensor  # [B, H, W] rough map, model space
    points: torch.Tensor  # int64 [B, n_critical + n_random, 2], −1 = empty slot
    n_critical: torch.Tensor  # int64 [B] valid critical points
    S_prime: torch.Tensor  # [B, H, W]
    M_prime: torch.Tensor  # [B, H, W]


def rough_map(
    attunet: torch.nn.Module, B: torch.Tensor, S: torch.Tensor, M: torch.Tensor, tta: bool = False
) -> torch.Tensor:
    """R̂ = AttUnet(B, S, M), ``[B, H, W]``, clamped to the model range.

    With ``tta`` R̂ is the mean over the 8 symmetries of the grid (each input transformed, the
    output transformed back); the symmetries that keep the grid's shape run as one batch.
    The input features are always computed in fp32, also inside a mixed-precision region, so
    training under bf16 autocast sees the same inputs as fp32 inference.
    """
    if not tta:
        with torch.autocast(B.device.type, enabled=False):
            features = boost_inputs(B.float(), S.float(), M.float())
        return attunet(features)[:, 0].clamp(-1, 1)
    n = B.shape[0]
    total = torch.zeros_like(S, dtype=torch.float32)
    for group in ((0, 2, 4, 6), (1, 3, 5, 7)):  # same output shape within a group
        stack = lambda x, group=group: torch.cat([dihedral(x, k) for k in group])  # noqa: E731
        out = rough_map(attunet, stack(B), stack(S), stack(M))
        for j, k in enumerate(group):
            total += dihedral_inverse(out[j * n : (j + 1) * n].float(), k)
    return total / 8


def boost_condition(
    R_hat: torch.Tensor,
    B: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    params: BoostParams,
    random_points,
    critical_points=critical_points_ref,
    merge_condition=merge_condition_ref,
) -> BoostOutput:
    """Critical + random points of R̂, merged with the real samples into S′, M′ (samples win).

    ``random_points`` is a ``torch.Generator`` (one stream for the whole batch, as in training) or
    a function ``(B, n_random) -> points`` such as :func:`random_points_per_map`.
    """
    crit, _, count = critical_points(
        R_hat, B, sigma=params.sigma, capacity=params.n_critical, min_response=params.min_response
    )
    if callable(random_points):
        rand = random_points(B, params.n_random)
    else:
        rand = random_points_ref(B, params.n_random, random_points)
    points = torch.cat([crit, rand], dim=1)
    S_prime, M_prime = merge_condition(R_hat, points, S, M)
    return BoostOutput(R_hat, points, count, S_prime, M_prime)


def random_points_per_map(seed: int):
    """A ``random_points`` function drawing each map's points from its own generator seeded with
    ``seed``, so a map's points never depend on the batch it is in (inference)."""

    def draw(B: torch.Tensor, n_random: int) -> torch.Tensor:
        return torch.cat(
            [
                random_points_ref(B[i : i + 1], n_random, torch.Generator().manual_seed(int(seed)))
                for i in range(B.shape[0])
            ]
        )

    return draw


def boost(
    attunet: torch.nn.Module,
    B: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    params: BoostParams,
    generator: torch.Generator | None = None,
    **ops,
) -> BoostOutput:
    return boost_condition(rough_map(attunet, B, S, M, params.tta), B, S, M, params, generator, **ops)
