"""The generation network's prediction, in one place for training and sampling.

The checkpoint's ``prediction_type`` (diffusers vocabulary) says what the U-Net outputs:

* ``"epsilon"``: ε̂ directly (the paper's choice);
* ``"sample"``: x̂0, parametrised as a residual on the boost map, ``x̂0 = R̂·[boost present] + U``.
  Measured on BRAT region 2 after a short GPU run, ε-prediction's x̂0 at the early DDIM steps was
  far worse than R̂ itself (MSE 1.13 vs 0.006 in model units at t = 900), so candidates started
  from a bad map; predicting x0 around R̂ makes every candidate at least start from R̂.

:func:`predict_eps` turns either into the ε that the DDIM update (``ddim_step``) consumes.
"""

from __future__ import annotations

import torch

from .features import denoiser_inputs


def predict(
    denoiser: torch.nn.Module,
    x_t: torch.Tensor,
    t: torch.Tensor,
    B: torch.Tensor,
    S_prime: torch.Tensor,
    M_prime: torch.Tensor,
    R_hat: torch.Tensor,
    has_samples: torch.Tensor,
    has_boost: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """The network's target-space output ``[N, H, W]`` (ε̂ or x̂0, by ``prediction_type``)."""
    out = denoiser(denoiser_inputs(x_t, B, S_prime, M_prime, R_hat, has_samples, has_boost), t)[:, 0]
    return to_target(out, R_hat, has_samples, has_boost, prediction_type)


def to_target(
    out: torch.Tensor,
    R_hat: torch.Tensor,
    has_samples: torch.Tensor,
    has_boost: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """The U-Net's output ``out [N, H, W]`` as ε̂ or x̂0; ``R_hat`` and the flags have N rows or
    one (a map's condition broadcast over its candidates, as the split engine passes them)."""
    if prediction_type == "epsilon":
        return out
    if prediction_type == "sample":
        boosted = (has_samples * has_boost).to(out.dtype).view(-1, 1, 1)
        return out + boosted * R_hat.to(out.dtype)
    raise ValueError(f"prediction_type {prediction_type!r} is not supported (epsilon, sample)")


def predict_eps(
    denoiser,
    x_t,
    t,
    B,
    S_prime,
    M_prime,
    R_hat,
    has_samples,
    has_boost,
    prediction_type: str,
    sqrt_alpha_bar_t: torch.Tensor,
    sqrt_one_minus_alpha_bar_t: torch.Tensor,
) -> torch.Tensor:
    """ε̂ for the DDIM update; x̂0 predictions are converted with ε = (x_t − √ᾱ_t·x̂0)/√(1−ᾱ_t)."""
    out = predict(denoiser, x_t, t, B, S_prime, M_prime, R_hat, has_samples, has_boost, prediction_type)
    return eps_from_target(out, x_t, prediction_type, sqrt_alpha_bar_t, sqrt_one_minus_alpha_bar_t)


def eps_from_target(
    out: torch.Tensor,
    x_t: torch.Tensor,
    prediction_type: str,
    sqrt_alpha_bar_t: torch.Tensor,
    sqrt_one_minus_alpha_bar_t: torch.Tensor,
) -> torch.Tensor:
    """ε̂ from the target-space output ``out`` of :func:`to_target` (``[N, H, W]``)."""
    if prediction_type == "epsilon":
        return out
    return (x_t - sqrt_alpha_bar_t * out) / sqrt_one_minus_alpha_bar_t
