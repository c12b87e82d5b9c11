"""The U-Net family: AttUnet (boost block) and the time-conditioned denoiser (generation block).

One class serves both: ``time_conditioned=False`` gives the paper's AttUnet (self-attention at the
low resolutions), ``True`` adds a sinusoidal timestep embedding to every residual block (the DDPM
ε-network). The network is fully convolutional: inputs of any H×W are padded internally to a
multiple of its total stride and cropped back.

For speed on CPUs the first layer may fold ``patch`` × ``patch`` pixels into channels
(pixel-unshuffle) and the last unfolds them; a full-resolution head then sees the building mask
again so edges stay sharp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock, SelfAttention2d, group_norm, timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int
    out_channels: int = 1
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4)
    blocks_per_level: int = 1
    attention_levels: tuple[int, ...] = (2,)  # indices into channel_mults
    patch: int = 2
    time_conditioned: bool = False
    head_channels: int = 16
    head_extra_channels: int = 1  # full-resolution inputs re-fed to the head (the building mask)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["attention_levels"] = list(self.attention_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        d = dict(d)
        d["channel_mults"] = tuple(d["channel_mults"])
        d["attention_levels"] = tuple(d["attention_levels"])
        return cls(**d)


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        p = cfg.patch
        chans = [cfg.base_channels * m for m in cfg.channel_mults]
        temb_dim = 4 * cfg.base_channels if cfg.time_conditioned else 0
        if cfg.time_conditioned:
            self.time_mlp = nn.Sequential(
                nn.Linear(cfg.base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim)
            )
        self.stem = nn.Conv2d(cfg.in_channels * p * p, chans[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = []
        c = chans[0]
        for level, ch in enumerate(chans):
            blocks = nn.ModuleList()
            for _ in range(cfg.blocks_per_level):
                blocks.append(ResBlock(c, ch, temb_dim))
                c = ch
            self.down_blocks.append(blocks)
            self.down_attn.append(SelfAttention2d(ch) if level in cfg.attention_levels else nn.Identity())
            skips.append(ch)
            last = level == len(chans) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c, c, temb_dim)
        self.mid_attn = SelfAttention2d(c)
        self.mid2 = ResBlock(c, c, temb_dim)
        self.up_blocks = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        for level in reversed(range(len(chans))):
            ch = chans[level]
            self.up_blocks.append(ResBlock(c + skips[level], ch, temb_dim))
            self.up_attn.append(SelfAttention2d(ch) if level in cfg.attention_levels else nn.Identity())
            c = ch
        self.out_norm = group_norm(c)
        self.out_conv = nn.Conv2d(c, cfg.head_channels * p * p, 3, padding=1)
        self.head = nn.Sequential(
            nn.Conv2d(cfg.head_channels + cfg.head_extra_channels, cfg.head_channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(cfg.head_channels, cfg.out_channels, 3, padding=1),
        )
        self.levels = len(chans)

    @property
    def stride(self) -> int:
        return self.cfg.patch * 2 ** (self.levels - 1)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` replicate-padded at the bottom and right to a multiple of :attr:`stride`."""
        H, W = x.shape[-2:]
        s = self.stride
        ph, pw = (-H) % s, (-W) % s
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def time_embedding(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if not self.cfg.time_conditioned:
            return None
        if t is None:
            raise ValueError("this network is time-conditioned: pass the timesteps t")
        return self.time_mlp(timestep_embedding(t, self.cfg.base_channels))

    def trunk(self, h: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        """Everything between the stem and the head: the stem's output ``[N, C0, H/p, W/p]`` →
        ``[N, head_channels, H, W]`` (the padded grid, unfolded back to full resolution)."""
        skips = []
        for blocks, attn, down in zip(self.down_blocks, self.down_attn, self.downsample):
            for block in blocks:
                h = block(h, temb)
            h = attn(h)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for block, attn in zip(self.up_blocks, self.up_attn):
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = attn(block(torch.cat([h, skip], dim=1), temb))
        return F.pixel_shuffle(self.out_conv(F.silu(self.out_norm(h))), self.cfg.patch)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """``x [N, in_channels, H, W]`` (its first ``head_extra_channels`` channels are re-fed to
        the head), ``t [N]`` timesteps when time-conditioned → ``[N, out_channels, H, W]``.

        The specification of the split form in :mod:`.split` (the engine's denoiser)."""
        H, W = x.shape[-2:]
        x = self.pad(x)
        temb = self.time_embedding(t)
        h = self.trunk(self.stem(F.pixel_unshuffle(x, self.cfg.patch)), temb)
        out = self.head(torch.cat([h, x[:, : self.cfg.head_extra_channels]], dim=1))
        return out[..., :H, :W]
