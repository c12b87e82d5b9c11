"""The split U-Net (models/split.py) against UNet.forward, its specification."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.models.checkpoint import build_networks
from wifidiff_fast.models.features import DENOISER_CHANNELS, X_T_CHANNEL
from wifidiff_fast.models.presets import preset
from wifidiff_fast.models.split import SplitUNet

pytestmark = pytest.mark.usefixtures("one_thread")
COND = [c for c in range(DENOISER_CHANNELS) if c != X_T_CHANNEL]


@pytest.fixture(scope="module")
def denoiser():
    torch.manual_seed(0)
    net = build_networks(preset("tiny")).denoiser.eval()
    with torch.no_grad():  # non-zero biases everywhere: the split must carry them exactly once
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0, 0.1)
    return net


def inputs(maps: int, rows_per_map: int, H: int, W: int, seed: int = 0):
    """Full inputs ``[maps·rows, 7, H, W]`` whose condition channels repeat per map, and the
    per-map condition ``[maps, 6, H, W]``."""
    g = torch.Generator().manual_seed(seed)
    cond = torch.randn(maps, DENOISER_CHANNELS - 1, H, W, generator=g)
    cond[:, 0] = (cond[:, 0] > 0.8).float()  # a building mask
    x_t = torch.randn(maps * rows_per_map, 1, H, W, generator=g)
    rep = cond.repeat_interleave(rows_per_map, 0)
    full = torch.cat([rep[:, :X_T_CHANNEL], x_t, rep[:, X_T_CHANNEL:]], dim=1)
    t = torch.randint(0, 1000, (maps * rows_per_map,), generator=g)
    return full, cond, x_t, t


@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (33, 17)])  # a stride multiple, then padding
def test_split_equals_the_unsplit_network_in_fp32(denoiser, hw):
    split = SplitUNet(denoiser, X_T_CHANNEL).eval()
    full, cond, x_t, t = inputs(2, 3, *hw)
    with torch.no_grad():
        ref = denoiser(full, t)
        stem, head = split.condition(cond)
        # per-row condition terms, and one map's terms broadcast over its rows
        rows = split(x_t, t, stem.repeat_interleave(3, 0), head.repeat_interleave(3, 0))
        per_map = torch.cat(
            [
                split(x_t[3 * m : 3 * m + 3], t[3 * m : 3 * m + 3], stem[m : m + 1], head[m : m + 1])
                for m in range(2)
            ]
        )
    assert rows.shape == ref.shape == (6, 1, *hw)
    torch.testing.assert_close(rows, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(per_map, ref, rtol=1e-5, atol=1e-5)


def test_split_in_bf16_is_as_close_to_fp32_as_the_unsplit_network(denoiser):
    # flash-attention's rule for low precision: error ≤ 2 × the same-precision reference's + atol
    split = SplitUNet(denoiser, X_T_CHANNEL).eval()
    full, cond, x_t, t = inputs(1, 4, 37, 53, seed=3)
    with torch.no_grad():
        ref = denoiser(full, t)
        stem, head = split.condition(cond)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            unsplit_bf16 = denoiser(full, t).float()
            split_bf16 = split(x_t, t, stem, head).float()
    ref_err = (unsplit_bf16 - ref).abs().max()
    assert (split_bf16 - ref).abs().max() <= 2 * ref_err + 1e-3


def test_split_shares_the_trunk_and_leaves_the_network_untouched(denoiser):
    before = {k: v.clone() for k, v in denoiser.state_dict().items()}
    split = SplitUNet(denoiser, X_T_CHANNEL)
    assert split.unet is denoiser and split.head_rest[-1] is denoiser.head[-1]
    p2 = denoiser.cfg.patch**2
    assert split.stem_step.weight.shape[1] == p2 and split.stem_cond.weight.shape[1] == len(COND) * p2
    assert split.stem_step.bias is None and split.head_step.bias is None  # biases go in once
    assert all(torch.equal(v, before[k]) for k, v in denoiser.state_dict().items())


def test_only_a_channel_the_head_does_not_reread_can_be_split_off(denoiser):
    with pytest.raises(ValueError, match="re-read by the head"):
        SplitUNet(denoiser, 0)  # the building mask also feeds the full-resolution head
    with pytest.raises(ValueError, match="step_channel must be in"):
        SplitUNet(denoiser, DENOISER_CHANNELS)
