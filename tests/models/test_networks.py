"""The three networks: presets, any grid size, time conditioning, the bounded correction α."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.models.checkpoint import build_networks
from wifidiff_fast.models.correction import (
    LOG_ALPHA_MAX,
    CorrectionConfig,
    CorrectionResNet,
)
from wifidiff_fast.models.features import (
    BOOST_CHANNELS,
    CORRECTION_CHANNELS,
    DENOISER_CHANNELS,
)
from wifidiff_fast.models.presets import PRESETS, preset
from wifidiff_fast.models.unet import UNet, UNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_with_the_feature_channel_counts(name):
    nets = build_networks(preset(name))
    assert nets.boost.cfg.in_channels == BOOST_CHANNELS and not nets.boost.cfg.time_conditioned
    assert nets.denoiser.cfg.in_channels == DENOISER_CHANNELS and nets.denoiser.cfg.time_conditioned
    assert nets.correction.cfg.in_channels == CORRECTION_CHANNELS
    for module in nets.modules().values():
        params = list(module.parameters())
        assert params and all(torch.isfinite(p).all() for p in params)


def test_presets_grow_and_unknown_preset_is_refused():
    def count(name):
        return sum(p.numel() for m in build_networks(preset(name)).modules().values() for p in m.parameters())

    assert count("tiny") < count("small") < count("paper")
    with pytest.raises(ValueError, match="unknown preset 'huge'.*tiny"):
        preset("huge")


@pytest.mark.parametrize("name", ["tiny", "small"])
@pytest.mark.parametrize("hw", [(37, 53), (32, 32), (33, 64), (5, 7)])
def test_any_grid_size_gives_the_same_size_out(name, hw):
    torch.manual_seed(0)
    nets = build_networks(preset(name))
    H, W = hw
    with torch.no_grad():
        out_b = nets.boost(torch.randn(2, BOOST_CHANNELS, H, W))
        out_d = nets.denoiser(torch.randn(2, DENOISER_CHANNELS, H, W), torch.tensor([0, 999]))
    assert out_b.shape == (2, 1, H, W) and torch.isfinite(out_b).all()
    assert out_d.shape == (2, 1, H, W) and torch.isfinite(out_d).all()


def test_padding_does_not_leak_between_maps_of_a_batch():
    """Each map's output depends only on that map (the batch is independent, odd size padded)."""
    torch.manual_seed(0)
    net = build_networks(preset("tiny")).denoiser.eval()
    x = torch.randn(3, DENOISER_CHANNELS, 37, 53)
    t = torch.tensor([10, 500, 990])
    with torch.no_grad():
        together = net(x, t)
        alone = torch.cat([net(x[i : i + 1], t[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_denoiser_requires_timesteps_and_uses_them():
    torch.manual_seed(0)
    net = build_networks(preset("tiny")).denoiser.eval()
    x = torch.randn(1, DENOISER_CHANNELS, 32, 32)
    with pytest.raises(ValueError, match="time-conditioned: pass the timesteps t"):
        net(x)
    with torch.no_grad():
        a, b = net(x, torch.tensor([0])), net(x, torch.tensor([900]))
    assert not torch.allclose(a, b)  # the embedding reaches the output


def test_boost_net_ignores_t():
    torch.manual_seed(0)
    net = build_networks(preset("tiny")).boost.eval()
    x = torch.randn(1, BOOST_CHANNELS, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net(x, torch.tensor([5])))


def test_unet_config_dict_roundtrip():
    cfg = preset("small")["boost"]
    d = cfg.to_dict()
    assert isinstance(d["channel_mults"], list) and isinstance(d["attention_levels"], list)
    assert UNetConfig.from_dict(d) == cfg
    ccfg = preset("small")["correction"]
    assert CorrectionConfig.from_dict(ccfg.to_dict()) == ccfg


def test_stride_covers_patch_and_levels():
    net = UNet(UNetConfig(BOOST_CHANNELS, base_channels=8, channel_mults=(1, 2, 2), patch=4))
    assert net.stride == 4 * 2**2


def test_correction_starts_at_log_alpha_init():
    torch.manual_seed(0)
    net = CorrectionResNet(CorrectionConfig(CORRECTION_CHANNELS, channels=(8, 16), log_alpha_init=0.5))
    with torch.no_grad():
        out = net(torch.randn(3, CORRECTION_CHANNELS, 40, 36))
    assert out.shape == (3,)
    torch.testing.assert_close(
        out, torch.full((3,), LOG_ALPHA_MAX * torch.tanh(torch.tensor(0.5 / LOG_ALPHA_MAX)).item())
    )


@pytest.mark.parametrize("bias", [1e4, -1e4, 50.0, -50.0])
def test_correction_log_alpha_is_bounded(bias):
    torch.manual_seed(0)
    net = CorrectionResNet(CorrectionConfig(CORRECTION_CHANNELS, channels=(8, 16)))
    with torch.no_grad():
        net.out.bias.fill_(bias)
        if abs(bias) < 1e4:  # random head weights on huge features: raw outputs far outside ±6
            torch.nn.init.normal_(net.out.weight, std=100.0)
        out = net(1e3 * torch.randn(4, CORRECTION_CHANNELS, 32, 32))
    assert torch.isfinite(out).all()
    assert (out.abs() <= LOG_ALPHA_MAX).all()
    assert torch.isfinite(out.exp()).all()  # α itself never overflows
    if abs(bias) == 1e4:  # zero head weights, saturated: the sign of the bias wins
        assert (out.sign() == (1.0 if bias > 0 else -1.0)).all() and (out.abs() > LOG_ALPHA_MAX - 0.01).all()
