"""Network presets: ``tiny`` (tests), ``small`` (the shipped default), ``paper`` (Table II plan).

``small`` is sized so a full K = 64, S = 10 estimate at 256² fits in about 30 s on a 2-core CPU
(640 denoiser passes); ``paper`` follows the paper's 128-128-256-256-512-512-512 channel plan and
is meant for GPU training.

Self-attention runs only where the grid is at most 16×16 for a 256² input (total stride ≥ 16):
attention over a 64×64 grid for a batch of 64 candidates needs tens of GB.
"""

from __future__ import annotations

from .correction import CorrectionConfig
from .features import BOOST_CHANNELS, CORRECTION_CHANNELS, DENOISER_CHANNELS
from .unet import UNetConfig

PRESETS = {
    "tiny": {
        "boost": UNetConfig(
            BOOST_CHANNELS,
            base_channels=8,
            channel_mults=(1, 2, 2),
            attention_levels=(2,),
            patch=4,
            head_channels=8,
        ),
        "denoiser": UNetConfig(
            DENOISER_CHANNELS,
            base_channels=8,
            channel_mults=(1, 2, 2),
            attention_levels=(2,),
            patch=4,
            time_conditioned=True,
            head_channels=8,
        ),
        "correction": CorrectionConfig(CORRECTION_CHANNELS, channels=(8, 16)),
    },
    "small": {
        "boost": UNetConfig(
            BOOST_CHANNELS,
            base_channels=32,
            channel_mults=(1, 2, 4, 4),
            blocks_per_level=2,
            attention_levels=(3,),
            patch=2,
            head_channels=16,
        ),
        "denoiser": UNetConfig(
            DENOISER_CHANNELS,
            base_channels=24,
            channel_mults=(1, 2, 4),
            blocks_per_level=1,
            attention_levels=(2,),
            patch=4,
            time_conditioned=True,
            head_channels=8,
        ),
        "correction": CorrectionConfig(CORRECTION_CHANNELS, channels=(16, 32, 64)),
    },
    "paper": {
        "boost": UNetConfig(
            BOOST_CHANNELS,
            base_channels=128,
            channel_mults=(1, 1, 2, 2, 4, 4, 4),
            blocks_per_level=1,
            attention_levels=(5, 6),
            patch=1,
            head_channels=32,
        ),
        "denoiser": UNetConfig(
            DENOISER_CHANNELS,
            base_channels=128,
            channel_mults=(1, 1, 2, 2, 4, 4, 4),
            blocks_per_level=1,
            attention_levels=(5, 6),
            patch=1,
            time_conditioned=True,
            head_channels=32,
        ),
        "correction": CorrectionConfig(CORRECTION_CHANNELS, channels=(32, 64, 128, 256)),
    },
}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
