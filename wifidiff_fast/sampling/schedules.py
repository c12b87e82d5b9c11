"""Noise schedules and the DDIM coefficient table (pure tensor functions).

The vocabulary follows diffusers (``num_train_timesteps``, ``beta_schedule``,
``timestep_spacing``, ``prediction_type``, ``clip_sample``, ``eta``). Unlike diffusers, every
per-step scalar is precomputed into one device table, read by step index inside the fused op, so
a whole sampling loop is graph-capturable (no Python floats on the hot path).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

# Columns of the DDIM table, in order (DDIM, Song et al. 2021, eq. 12 with σ_t(η) of eq. 16).
TABLE_COLUMNS = (
    "sqrt_alpha_bar_t",
    "sqrt_one_minus_alpha_bar_t",
    "sqrt_alpha_bar_prev",
    "dir_coef",
    "sigma_t",
)


@dataclass(frozen=True)
class SchedulerConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"
    timestep_spacing: str = "leading"
    prediction_type: str = "sample"  # see wifidiff_fast.models.denoiser for why not "epsilon"
    clip_sample: bool = True
    clip_sample_range: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def betas(cfg: SchedulerConfig) -> torch.Tensor:
    """β_t, t = 0..T−1, float64."""
    if cfg.beta_schedule == "linear":
        return torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps, dtype=torch.float64)
    if cfg.beta_schedule == "scaled_linear":
        return (
            torch.linspace(
                cfg.beta_start**0.5, cfg.beta_end**0.5, cfg.num_train_timesteps, dtype=torch.float64
            )
            ** 2
        )
    raise ValueError(f"beta_schedule {cfg.beta_schedule!r} is not supported (linear, scaled_linear)")


def alphas_cumprod(cfg: SchedulerConfig) -> torch.Tensor:
    """ᾱ_t = Π_{s≤t} (1 − β_s), float64 [T]."""
    return torch.cumprod(1.0 - betas(cfg), dim=0)


def ddim_timesteps(cfg: SchedulerConfig, num_inference_steps: int) -> torch.Tensor:
    """The ``n_steps`` training timesteps visited by DDIM, descending (diffusers' spacing rules)."""
    T, n_steps = cfg.num_train_timesteps, int(num_inference_steps)
    if not 1 <= n_steps <= T:
        raise ValueError(f"steps must be in 1..{T}, got {n_steps}")
    if cfg.timestep_spacing == "leading":
        ts = torch.arange(0, n_steps) * (T // n_steps)
    elif cfg.timestep_spacing == "trailing":
        ts = torch.round(torch.arange(T, 0, -T / n_steps)).long() - 1
        return ts.long()
    elif cfg.timestep_spacing == "linspace":
        ts = torch.linspace(0, T - 1, n_steps).round()
    else:
        raise ValueError(f"timestep_spacing {cfg.timestep_spacing!r} is not supported")
    return ts.long().flip(0)


def ddim_table(
    cfg: SchedulerConfig, num_inference_steps: int, eta: float = 0.0, device=None, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step DDIM coefficients ``[n_steps, 5]`` (columns: ``TABLE_COLUMNS``) and timesteps ``[n_steps]``.

    Row i serves the update x_{t_i} → x_{t_{i+1}} (t_S = "−1", where ᾱ = 1, as diffusers'
    ``set_alpha_to_one=True``):

    * σ_t = η·sqrt((1 − ᾱ_prev)/(1 − ᾱ_t))·sqrt(1 − ᾱ_t/ᾱ_prev)          (eq. 16)
    * dir_coef = sqrt(1 − ᾱ_prev − σ_t²)                                  (eq. 12, "direction")
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    ab = alphas_cumprod(cfg)
    ts = ddim_timesteps(cfg, num_inference_steps)
    ab_t = ab[ts]
    ab_prev = torch.cat([ab[ts[1:]], torch.ones(1, dtype=torch.float64)])
    sigma = eta * torch.sqrt((1 - ab_prev) / (1 - ab_t)) * torch.sqrt(1 - ab_t / ab_prev)
    dir_coef = torch.sqrt(torch.clamp(1 - ab_prev - sigma**2, min=0.0))
    table = torch.stack([ab_t.sqrt(), (1 - ab_t).sqrt(), ab_prev.sqrt(), dir_coef, sigma], dim=1)
    return table.to(device=device, dtype=dtype), ts.to(device=device)
