"""The DDIM sampling loop as a small pure function (k-diffusion style).

``step_fn`` is the update op (the fused ``wifidiff_fast.ops.ddim_step`` at inference, the
reference in training), ``eps_fn(x_t, t_index)`` the conditioned network; noise for η > 0 comes
from ``noise_fn`` so runs are reproducible and testable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..reference.ddim_step import ddim_step_ref


def ddim_sample(
    eps_fn: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    table: torch.Tensor,
    start: int = 0,
    stop: int | None = None,
    step_fn=ddim_step_ref,
    noise_fn: Callable[[int], torch.Tensor] | None = None,
    clip_sample: bool = True,
    clip_range: float = 1.0,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run table rows ``start .. stop-1`` from ``x``; returns ``(x, last x0_pred)``.

    Splitting a run into ``[0, m)`` then ``[m, S)`` gives exactly the same result as ``[0, S)``
    (midpoint reuse relies on it).
    """
    stop = table.shape[0] if stop is None else stop
    x0_pred = x
    for i in range(start, stop):
        eps = eps_fn(x, i)
        noise = noise_fn(i) if noise_fn is not None else None
        x, x0_pred = step_fn(x, eps, table, i, noise=noise, clip_sample=clip_sample, clip_range=clip_range)
        if callback is not None:
            callback(i, x, x0_pred)
    return x, x0_pred
