"""Reference DDIM update (the specification of the fused ``ddim_step`` op).

With the per-step coefficients of one table row (``sampling.schedules.ddim_table``), the DDIM
update of Song et al. 2021, eq. 12, with σ_t(η) from eq. 16 folded into the table:

    x0_pred = (x_t − sqrt(1 − ᾱ_t)·ε) / sqrt(ᾱ_t)                    (step 1)
    x_prev  = sqrt(ᾱ_prev)·x0_pred + sqrt(1 − ᾱ_prev − σ_t²)·ε + σ_t·z  (steps 3–5)

The numbered steps below (1, 2, 2b, 3, 4, 5) are this project's own; the C++ (``csrc/ddim_step.h``)
and the Triton kernel (``kernels/ddim_step.py``) use the same numbers so the three read side by
side. The results match diffusers' ``DDIMScheduler.step`` (``tests/sampling/test_ddim.py``).
"""

from __future__ import annotations

import torch


def ddim_step_ref(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    table: torch.Tensor,
    step: torch.Tensor | int,
    noise: torch.Tensor | None = None,
    clip_sample: bool = True,
    clip_range: float = 1.0,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM update x_t → x_prev for a whole batch ``[N, C, H, W]``.

    Args:
        x_t: current noisy sample.
        eps: ε_θ(x_t, t, cond), same shape.
        table: ``[n_steps, 5]`` from :func:`wifidiff_fast.sampling.schedules.ddim_table`.
        step: row index into ``table`` (int or 0-dim integer tensor; a tensor keeps it on device).
        noise: standard normal noise, used when σ_t > 0 (η > 0); ``None`` means zero noise.
        clip_sample: clamp x0_pred to ``[-clip_range, clip_range]`` (diffusers ``clip_sample``).
        known, known_mask: the known-sample write of the condition raster (optional, together):
            ``[G, C, H, W]`` with G dividing N; candidate n belongs to group ``n // (N // G)``
            (the pipeline's ``repeat_interleave`` layout: K candidates per map). Where the mask
            is non-zero, x0_pred takes the known value (after clipping: measurements win), and
            x_prev is computed from that x0_pred. ε is not recomputed (as for clipping).

    Returns:
        ``(x_prev, x0_pred)``, both shaped like ``x_t`` and in its dtype.
    """
    coef = table.index_select(0, torch.as_tensor(step, device=table.device).reshape(1).long())[0]
    coef = coef.to(torch.float64 if x_t.dtype == torch.float64 else torch.float32)
    sqrt_ab_t, sqrt_1m_ab_t, sqrt_ab_prev, dir_coef, sigma_t = coef.unbind(0)
    x = x_t.to(coef.dtype)
    e = eps.to(coef.dtype)
    # 1. predicted x0 ("predicted original sample", eq. 12 first term)
    x0_pred = (x - sqrt_1m_ab_t * e) / sqrt_ab_t
    # 2. optional clipping of x0 (eps is NOT recomputed: diffusers' use_clipped_model_output=False)
    if clip_sample:
        x0_pred = x0_pred.clamp(-clip_range, clip_range)
    # 2b. optional known-sample write: x0 = S′ where M′ ≠ 0, per group of N // G candidates
    if known is not None:
        per_group = x_t.shape[0] // known.shape[0]
        write = known_mask.repeat_interleave(per_group, 0) != 0
        x0_pred = torch.where(write, known.to(coef.dtype).repeat_interleave(per_group, 0), x0_pred)
    # 3. direction pointing to x_t (eq. 12 second term)
    direction = dir_coef * e
    # 4. x_{t-1} without noise, 5. plus σ_t·z when η > 0
    x_prev = sqrt_ab_prev * x0_pred + direction
    if noise is not None:
        x_prev = x_prev + sigma_t * noise.to(coef.dtype)
    return x_prev.to(x_t.dtype), x0_pred.to(x_t.dtype)
