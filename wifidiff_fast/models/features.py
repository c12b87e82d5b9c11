"""Input rasters of the three networks, built in one place for training and inference alike.

All inputs are model-space tensors ``[N, H, W]`` (or ``[N, 1, H, W]``): B (1 = building), S, M
(sample raster and mask), R̂ (the boost map). The boost network also gets multi-scale normalised
convolutions of the samples — Gaussian-weighted averages ``(G_σ * S)/(G_σ * M)`` with their
support ``G_σ * M`` — the classic interpolation a U-Net would otherwise have to learn to do with
its receptive field; it lets a small network reach far-away samples at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NC_SIGMAS = (4.0, 16.0, 48.0)
BOOST_CHANNELS = 3 + 2 * len(NC_SIGMAS) + 1
DENOISER_CHANNELS = 7
X_T_CHANNEL = 1  # the one denoiser input channel that changes over a request's DDIM steps
CORRECTION_CHANNELS = 6
HIGH_POWER_DB = 10.0  # the high-power map of R̂ marks pixels within this many dB of its maximum


def _gaussian(sigma: float, device, dtype) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=device, dtype=dtype)
    return torch.exp(-0.5 * (t / sigma) ** 2)  # peak 1: the support counts samples


def _separable(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r = g.numel() // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0)), g.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r)), g.view(1, 1, -1, 1))


def normalized_convolution(
    S: torch.Tensor, M: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G_σ*S)/(G_σ*M)`` and its support ``(G_σ*M)/(1 + G_σ*M)``, ``[N,1,H,W]`` each.

    Wide windows run on a 4× sum-pooled grid (same mass, 16× fewer pixels) and are upsampled.
    """
    H, W = S.shape[-2:]
    f = 1 if sigma <= 6 else 4
    if f > 1:
        ph, pw = (-H) % f, (-W) % f
        S = F.avg_pool2d(F.pad(S, (0, pw, 0, ph)), f) * (f * f)
        M = F.avg_pool2d(F.pad(M, (0, pw, 0, ph)), f) * (f * f)
    g = _gaussian(sigma / f, S.device, S.dtype)
    num, den = _separable(S, g), _separable(M, g)
    if f > 1:
        num = F.interpolate(num, scale_factor=f, mode="bilinear", align_corners=False)[..., :H, :W]
        den = F.interpolate(den, scale_factor=f, mode="bilinear", align_corners=False)[..., :H, :W]
        den = den.clamp_min(0)
    return num / (den + 1e-3), den / (1.0 + den)


def boost_inputs(B: torch.Tensor, S: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """AttUnet input ``[N, BOOST_CHANNELS, H, W]``: B, S, M, normalised convolutions, sample mean."""
    B, S, M = (t.unsqueeze(1) if t.dim() == 3 else t for t in (B, S, M))
    chans = [B.to(S.dtype), S, M]
    for sigma in NC_SIGMAS:
        chans.extend(normalized_convolution(S, M, sigma))
    mean = S.sum(dim=(2, 3), keepdim=True) / M.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    chans.append(mean.expand_as(S))
    return torch.cat(chans, dim=1)


def _condition_channels(B, S_prime, M_prime, R_hat, has_samples, has_boost, dtype) -> list[torch.Tensor]:
    """The denoiser's six per-map channels ``[N, 1, H, W]`` each, in input order without x_t."""
    B, S_prime, M_prime, R_hat = (t.unsqueeze(1) if t.dim() == 3 else t for t in (B, S_prime, M_prime, R_hat))
    samples = has_samples.to(dtype).view(-1, 1, 1, 1)
    boosted = has_boost.to(dtype).view(-1, 1, 1, 1) * samples
    return [
        B.to(dtype),
        S_prime * samples,
        M_prime * samples,
        R_hat * boosted,
        samples.expand_as(S_prime),
        boosted.expand_as(S_prime),
    ]


@dataclass(frozen=True)
class Condition:
    """What the denoiser is conditioned on for a batch: rasters ``[N, H, W]`` and two flags that
    hold for the whole batch (see :func:`denoiser_inputs`).

    Full condition: ``Condition(B, S_prime, M_prime, R_hat)``; without the boost block:
    ``has_boost=0`` (S′, M′ are then the real samples); static-only (midpoint reuse stage 1):
    :meth:`static`.
    """

    B: torch.Tensor
    S_prime: torch.Tensor
    M_prime: torch.Tensor
    R_hat: torch.Tensor
    has_samples: float = 1.0
    has_boost: float = 1.0

    @classmethod
    def static(cls, B: torch.Tensor) -> Condition:
        """Buildings only: S′, M′, R̂ zero and both flags 0."""
        zeros = torch.zeros_like(B)
        return cls(B, zeros, zeros, zeros, 0.0, 0.0)

    def repeat(self, K: int) -> Condition:
        """Each of the N maps' rasters repeated K times in a row: ``[N·K, H, W]``."""
        rep = lambda z: z.repeat_interleave(K, 0)  # noqa: E731
        return Condition(
            rep(self.B),
            rep(self.S_prime),
            rep(self.M_prime),
            rep(self.R_hat),
            self.has_samples,
            self.has_boost,
        )


def denoiser_inputs(
    x_t: torch.Tensor,
    B: torch.Tensor,
    S_prime: torch.Tensor,
    M_prime: torch.Tensor,
    R_hat: torch.Tensor,
    has_samples: torch.Tensor,
    has_boost: torch.Tensor,
) -> torch.Tensor:
    """ε-network input ``[N, 7, H, W]``: B, x_t, S′, M′, R̂ and two constant flag channels.

    The flags say which condition is present, per map ``[N]``:
      * full condition: both 1 (S′, M′ from the boost block, R̂ given);
      * without boost (paper's ablation): ``has_boost = 0`` — S′, M′ are the real samples alone and
        R̂ is zeroed;
      * static-only (midpoint reuse stage 1): both 0 — S′, M′, R̂ zeroed, only buildings remain.
    """
    x_t = x_t.unsqueeze(1) if x_t.dim() == 3 else x_t
    cond = _condition_channels(B, S_prime, M_prime, R_hat, has_samples, has_boost, x_t.dtype)
    return torch.cat(cond[:X_T_CHANNEL] + [x_t] + cond[X_T_CHANNEL:], dim=1)


def denoiser_condition(
    B: torch.Tensor,
    S_prime: torch.Tensor,
    M_prime: torch.Tensor,
    R_hat: torch.Tensor,
    has_samples: torch.Tensor,
    has_boost: torch.Tensor,
) -> torch.Tensor:
    """The six channels of :func:`denoiser_inputs` other than x_t, in the same order: ``[N, 6, H,
    W]``, fp32. They are fixed for a request, so an engine computes what the network makes of them
    once per map (``models.split``)."""
    return torch.cat(
        _condition_channels(B, S_prime, M_prime, R_hat, has_samples, has_boost, torch.float32), dim=1
    ).float()


def log_filter(x: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Laplacian of Gaussian (edge map), ``[N,1,H,W]`` → same."""
    g = _gaussian(sigma, x.device, x.dtype)
    g = g / g.sum()
    smooth = _separable(F.pad(x, (1, 1, 1, 1), mode="replicate"), g)
    lap = (
        smooth[..., :-2, 1:-1]
        + smooth[..., 2:, 1:-1]
        + smooth[..., 1:-1, :-2]
        + smooth[..., 1:-1, 2:]
        - 4 * smooth[..., 1:-1, 1:-1]
    )
    return lap


def correction_inputs(
    R_hat: torch.Tensor, S: torch.Tensor, M: torch.Tensor, B: torch.Tensor, db_span: float
) -> torch.Tensor:
    """Correction-ResNet input ``[N, 6, H, W]``: R̂, S, M, B, LoG(R̂), high-power map of R̂."""
    R_hat, S, M, B = (t.unsqueeze(1) if t.dim() == 3 else t for t in (R_hat, S, M, B))
    B = B.to(R_hat.dtype)
    open_max = torch.where(B > 0, torch.full_like(R_hat, -1e9), R_hat).amax(dim=(2, 3), keepdim=True)
    high = (R_hat >= open_max - 2.0 * HIGH_POWER_DB / db_span).to(R_hat.dtype) * (1 - B)
    return torch.cat([R_hat, S, M, B, log_filter(R_hat) * 10.0, high], dim=1)
