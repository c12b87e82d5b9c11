"""Election block (paper §IV-C): α from the correction ResNet, then ``ops.elect`` over the K
diffusion candidates (and the boost map R̂ as candidate K), arg-min.

The scoring itself is the fused op (spec: :func:`~wifidiff_fast.reference.elect.elect_ref`);
this module only wires the networks' outputs into it. Tensor code with fixed shapes and no host
synchronisation, so the CUDA-graph runner (``runtime.graphs``) captures it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from .. import ops
from ..models.features import correction_inputs
from ..reference.elect import ElectionParams


class Elected(NamedTuple):
    """The election's outputs for n maps (unpacks as a 6-tuple)."""

    chosen: torch.Tensor  # [n, H, W] the elected candidate, model space
    cand: torch.Tensor  # [n, K(+1), H, W] the candidates that competed (R̂ last when it joined)
    scores: torch.Tensor  # [n, K(+1)] lower is better
    elected: torch.Tensor  # int64 [n]
    spread: torch.Tensor  # [n, H, W] dB: spread of the K diffusion candidates, 0 on buildings
    alpha: torch.Tensor  # [n] the correction factor α


def elect(
    cand: torch.Tensor,
    R_hat: torch.Tensor,
    B: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    correction: Callable[[torch.Tensor], torch.Tensor],
    params: ElectionParams,
    *,
    use_boost: bool = True,
    boost_candidate: bool = True,
    use_elect: bool = True,
    backend: str | None = None,
) -> Elected:
    """Elect one of ``cand [n, K, H, W]`` (model space) per map.

    ``correction`` maps the correction features to log α (the correction ResNet or its engine
    runner); without the boost block there is no R̂ to correct towards and α = 0.
    ``boost_candidate`` appends R̂ as candidate K; ``use_elect=False`` (ablation) keeps the
    scores but returns the first candidate. ``backend`` is the fused op's backend (None: auto).
    """
    n, K, H, W = cand.shape
    if use_boost:
        feats = correction_inputs(R_hat, S, M, B, params.db_span)
        alpha = torch.exp(correction(feats)).float()
        if boost_candidate:
            cand = torch.cat([cand, R_hat[:, None].to(cand.dtype)], dim=1)
    else:
        alpha = torch.zeros(n, device=cand.device)
    scores, elected, spread = ops.elect(cand, R_hat, S, M, B, alpha, params, backend=backend)
    if use_boost and boost_candidate:
        # the uncertainty is the spread of the K diffusion candidates, not of R̂ against them
        spread = cand[:, :K].float().std(dim=1, unbiased=False) * (params.db_span / 2) * (B == 0)
    if not use_elect:
        elected = torch.zeros_like(elected)
    chosen = cand.gather(1, elected.view(n, 1, 1, 1).expand(n, 1, H, W))[:, 0]
    return Elected(chosen, cand, scores, elected, spread, alpha)
