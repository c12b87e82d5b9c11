"""The U-Net with its input split into one per-step channel and a fixed condition.

Of the denoiser's input channels only x_t changes over a request's K × S evaluations; the rest
(B, S′, M′, R̂ and the flags) is fixed per map. The network touches its input in two places, both
linear in it:

* the stem, ``conv3x3(pixel_unshuffle(x, p))``: pixel_unshuffle acts per channel (input channel
  ``c`` becomes output channels ``c·p² .. c·p² + p² − 1``), so the stem is the sum of a
  convolution of the unshuffled x_t with the weight's x_t slice and one of the unshuffled
  condition with the remaining slices (plus the bias);
* the head's first convolution, which re-reads the first ``head_extra_channels`` input channels
  (the building mask) at full resolution: the same sum over its input channels.

:class:`SplitUNet` computes the condition's two terms once per map (:meth:`SplitUNet.condition`)
and adds them, broadcast over the candidates, at every step (:meth:`SplitUNet.forward`). It
equals :meth:`UNet.forward` (the specification) up to the order of the float sums, with the
checkpoint's weights (sliced copies of two convolutions; nothing retrained).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .unet import UNet


def _sliced_conv(conv: nn.Conv2d, channels: list[int], group: int, bias: bool) -> nn.Conv2d:
    """A copy of ``conv`` that reads only the input channel groups ``channels`` (each ``group``
    wide, in that order), with or without the bias."""
    w = conv.weight.detach()
    picked = torch.cat([w[:, c * group : (c + 1) * group] for c in channels], dim=1)
    out = nn.Conv2d(picked.shape[1], w.shape[0], w.shape[-1], padding=conv.padding, bias=bias)
    with torch.no_grad():
        out.weight.copy_(picked)
        if bias:
            out.bias.copy_(conv.bias.detach())
    return out.to(w.device)


class SplitUNet(nn.Module):
    """``unet`` with input channel ``step_channel`` fed per step and the others once per map.

    Shares every module of ``unet`` except the stem and the head's first convolution, of which it
    holds sliced copies (a snapshot: build it after loading the weights)."""

    # names this exported form in the artifact cache key (runtime.aot): bump it when forward's
    # computation changes, so no stale package is ever loaded
    export_form = "split-v1"

    def __init__(self, unet: UNet, step_channel: int):
        super().__init__()
        cfg = unet.cfg
        if not 0 <= step_channel < cfg.in_channels:
            raise ValueError(f"step_channel must be in 0..{cfg.in_channels - 1}, got {step_channel}")
        if step_channel < cfg.head_extra_channels:
            raise ValueError(
                f"input channel {step_channel} is re-read by the head (head_extra_channels="
                f"{cfg.head_extra_channels}); only a channel the head does not see can be split off"
            )
        self.unet = unet
        self.cfg = cfg
        self.step_channel = step_channel
        p2 = cfg.patch**2
        cond = [c for c in range(cfg.in_channels) if c != step_channel]
        self.stem_step = _sliced_conv(unet.stem, [step_channel], p2, bias=False)
        self.stem_cond = _sliced_conv(unet.stem, cond, p2, bias=True)
        # head input = [trunk output (head_channels), the first head_extra_channels inputs]
        hc = cfg.head_channels
        self.head_step = _sliced_conv(unet.head[0], list(range(hc)), 1, bias=False)
        self.head_cond = _sliced_conv(
            unet.head[0], list(range(hc, hc + cfg.head_extra_channels)), 1, bias=True
        )
        self.head_rest = unet.head[1:]

    def condition(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cond [n, in_channels − 1, H, W]`` (the input without ``step_channel``) → the stem's
        and the head's condition terms, bias included: ``[n, C0, H′/p, W′/p]`` and
        ``[n, head_channels, H′, W′]`` on the padded grid ``H′ × W′``."""
        cond = self.unet.pad(cond)
        # step_channel ≥ head_extra_channels: the head's extra inputs are cond's first channels
        extra = cond[:, : self.cfg.head_extra_channels]
        return self.stem_cond(F.pixel_unshuffle(cond, self.cfg.patch)), self.head_cond(extra)

    def forward(
        self, x_t: torch.Tensor, t: torch.Tensor | None, stem_cond: torch.Tensor, head_cond: torch.Tensor
    ) -> torch.Tensor:
        """``x_t [N, 1, H, W]``, ``t [N]``, the condition terms of :meth:`condition` with batch
        ``N`` or 1 (broadcast over the N rows) → ``[N, out_channels, H, W]``, as ``unet`` would
        give for the full input."""
        H, W = x_t.shape[-2:]
        x_t = self.unet.pad(x_t)
        temb = self.unet.time_embedding(t)
        h = self.stem_step(F.pixel_unshuffle(x_t, self.cfg.patch))
        # .to: under autocast the convolution's output is low precision; keep the sum in it, as
        # the unsplit stem's output is. In place: the head's sum is the size of the whole batch at
        # full resolution, and a fresh buffer of it per call costs page faults in eager mode
        h = self.unet.trunk(h.add_(stem_cond.to(h.dtype)), temb)
        h = self.head_step(h)
        return self.head_rest(h.add_(head_cond.to(h.dtype)))[..., :H, :W]
