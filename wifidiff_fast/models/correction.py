"""The election's correction network (paper §IV-C): predicts the factor α of the corrected
sample error ``d(k) = L_s(k) + α·mean_open((x_k − R̂)²)`` from R̂, the samples, a
Laplacian-of-Gaussian edge map and a high-power map of R̂.

A small strided ResNet with global average pooling; it outputs log α so α stays positive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock

LOG_ALPHA_MAX = 6.0


@dataclass(frozen=True)
class CorrectionConfig:
    in_channels: int = 6
    channels: tuple[int, ...] = (16, 32, 64)
    log_alpha_init: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CorrectionConfig:
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


class CorrectionResNet(nn.Module):
    def __init__(self, cfg: CorrectionConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, cfg.channels[0], 4, stride=4)]
        c = cfg.channels[0]
        for ch in cfg.channels:
            layers += [ResBlock(c, ch), nn.Conv2d(ch, ch, 3, stride=2, padding=1)]
            c = ch
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(c, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, cfg.log_alpha_init)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features [B, in_channels, H, W]`` → ``log α [B]``, bounded to ±LOG_ALPHA_MAX (an
        unbounded α overflowed exp() in training and turned the weights into NaN)."""
        h = self.body(features)
        raw = self.out(F.adaptive_avg_pool2d(h, 1).flatten(1))[:, 0]
        return LOG_ALPHA_MAX * torch.tanh(raw / LOG_ALPHA_MAX)
