"""Generation block (paper §IV-B) with midpoint reuse (RadioDiff-Flux idea, DESIGN §1).

K candidates per map are one batch of B·K, sampled with DDIM over a precomputed coefficient table.
With reuse ratio R, the first ``m = round(R·S)`` steps run under the static-only condition
(buildings only, no samples) from seeded noise; their K midpoints depend only on the layout, the
model, the sampler and the seed, so they are cached and a repeated layout skips them. R = 0 is
exactly plain sampling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.denoiser import predict_eps


def reuse_steps(reuse: float, steps: int) -> int:
    return int(round(reuse * steps))


def initial_noise(K: int, shape: tuple[int, int], seed: int, device) -> tuple[torch.Tensor, torch.Generator]:
    """x_T for one map: ``[K, H, W]`` from a CPU generator seeded with ``seed`` (device-independent)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn((K, *shape), generator=gen).to(device), gen


def make_eps_fn(
    denoiser: torch.nn.Module,
    table: torch.Tensor,
    timesteps: torch.Tensor,
    B: torch.Tensor,
    S: torch.Tensor,
    M: torch.Tensor,
    R_hat: torch.Tensor,
    has_samples: float,
    has_boost: float,
    prediction_type: str,
    chunk: int,
    group: int = 1,
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """ε_θ(x, t_i, cond) over a ``[N, H, W]`` batch whose condition rasters are ``[N, H, W]``,
    evaluated in chunks of ``chunk`` maps to bound memory. The rasters come in runs of ``group``
    identical rows (a map's candidates); an engine denoiser with a split form
    (``runtime.split``) uses that to condition once per run instead of at every call."""
    split = getattr(denoiser, "split", None)
    if split is not None:
        return split.make_eps_fn(
            table, timesteps, B, S, M, R_hat, has_samples, has_boost, prediction_type, chunk, group
        )
    n = B.shape[0]
    flags_s = torch.full((n,), float(has_samples), device=B.device)
    flags_b = torch.full((n,), float(has_boost), device=B.device)

    def eps_fn(x: torch.Tensor, i: int) -> torch.Tensor:
        t = timesteps[i].expand(x.shape[0])
        out = []
        for a in range(0, x.shape[0], chunk):
            sl = slice(a, a + chunk)
            out.append(
                predict_eps(
                    denoiser,
                    x[sl],
                    t[sl],
                    B[sl],
                    S[sl],
                    M[sl],
                    R_hat[sl],
                    flags_s[sl],
                    flags_b[sl],
                    prediction_type,
                    table[i, 0],
                    table[i, 1],
                )
            )
        return torch.cat(out)

    return eps_fn
