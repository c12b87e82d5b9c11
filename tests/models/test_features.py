"""Network inputs (features.py) and the denoiser's prediction parametrisation (denoiser.py)."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.models.checkpoint import build_networks
from wifidiff_fast.models.denoiser import predict, predict_eps
from wifidiff_fast.models.features import (
    BOOST_CHANNELS,
    CORRECTION_CHANNELS,
    DENOISER_CHANNELS,
    NC_SIGMAS,
    X_T_CHANNEL,
    boost_inputs,
    correction_inputs,
    denoiser_condition,
    denoiser_inputs,
    normalized_convolution,
)
from wifidiff_fast.models.presets import preset

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_sample(H=64, W=64, at=(20, 30), value=0.4):
    S, M = torch.zeros(1, 1, H, W), torch.zeros(1, 1, H, W)
    S[0, 0, at[0], at[1]] = value
    M[0, 0, at[0], at[1]] = 1.0
    return S, M


@pytest.mark.parametrize("sigma", NC_SIGMAS)
def test_normalized_convolution_returns_the_sample_value_near_an_isolated_sample(sigma):
    S, M = _one_sample(value=0.4)
    value, support = normalized_convolution(S, M, sigma)
    assert value.shape == support.shape == (1, 1, 64, 64)
    near = value[0, 0, 18:23, 28:33]  # the sample pixel and its 5×5 neighbourhood
    torch.testing.assert_close(near, torch.full_like(near, 0.4), rtol=0, atol=2e-3)
    assert 0.45 < support[0, 0, 20, 30] <= 0.5  # G*M ≈ 1 there → 1/(1+1)
    assert ((support >= 0) & (support < 1)).all()


def test_normalized_convolution_interpolates_between_two_samples():
    S, M = _one_sample(value=-0.5, at=(10, 10))
    S[0, 0, 50, 50], M[0, 0, 50, 50] = 0.5, 1.0
    value, support = normalized_convolution(S, M, 4.0)
    assert abs(value[0, 0, 10, 10] + 0.5) < 2e-3 and abs(value[0, 0, 50, 50] - 0.5) < 2e-3
    assert support[0, 0, 30, 62] < support[0, 0, 11, 11]  # support fades away from the samples


def test_boost_inputs_channels_and_content():
    S, M = _one_sample()
    B = torch.zeros(1, 64, 64)
    B[0, :5, :5] = 1
    x = boost_inputs(B, S[:, 0], M[:, 0])  # [N, H, W] inputs are accepted too
    assert x.shape == (1, BOOST_CHANNELS, 64, 64)
    assert BOOST_CHANNELS == preset("small")["boost"].in_channels
    assert torch.equal(x[:, 0], B) and torch.equal(x[:, 1], S[:, 0]) and torch.equal(x[:, 2], M[:, 0])
    torch.testing.assert_close(x[:, -1], torch.full((1, 64, 64), 0.4))  # the sample mean


def test_denoiser_inputs_zero_the_condition_without_samples():
    g = torch.Generator().manual_seed(0)
    x_t, S, M, R = (torch.randn(2, 32, 32, generator=g) for _ in range(4))
    B = (torch.rand(2, 32, 32, generator=g) < 0.2).float()
    inp = denoiser_inputs(
        x_t, B, S, M, R, has_samples=torch.tensor([0.0, 1.0]), has_boost=torch.tensor([1.0, 1.0])
    )
    assert inp.shape == (2, DENOISER_CHANNELS, 32, 32)
    for i in range(2):  # buildings and x_t are always there
        assert torch.equal(inp[i, 0], B[i]) and torch.equal(inp[i, 1], x_t[i])
    assert (inp[0, 2:] == 0).all()  # static-only: S′, M′, R̂ and both flags zeroed
    assert torch.equal(inp[1, 2], S[1]) and torch.equal(inp[1, 3], M[1]) and torch.equal(inp[1, 4], R[1])
    assert (inp[1, 5:] == 1).all()
    no_boost = denoiser_inputs(x_t, B, S, M, R, torch.ones(2), torch.zeros(2))
    assert torch.equal(no_boost[:, 2], S) and (no_boost[:, 4] == 0).all()
    assert (no_boost[:, 5] == 1).all() and (no_boost[:, 6] == 0).all()


def test_denoiser_condition_is_the_input_without_x_t():
    # the split engine (models.split) relies on it: every flag combination, [N,H,W] and [N,1,H,W]
    g = torch.Generator().manual_seed(1)
    x_t, S, M, R = (torch.randn(4, 24, 40, generator=g) for _ in range(4))
    B = (torch.rand(4, 24, 40, generator=g) < 0.2).float()
    has_samples, has_boost = torch.tensor([0.0, 1.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    full = denoiser_inputs(x_t, B, S, M, R, has_samples, has_boost)
    cond = denoiser_condition(B[:, None], S, M[:, None], R, has_samples, has_boost)
    assert cond.shape == (4, DENOISER_CHANNELS - 1, 24, 40) and cond.dtype == torch.float32
    keep = [c for c in range(DENOISER_CHANNELS) if c != X_T_CHANNEL]
    assert torch.equal(cond, full[:, keep]) and torch.equal(full[:, X_T_CHANNEL], x_t)


def test_correction_inputs_channels_and_high_power_map():
    R = torch.full((1, 32, 32), -0.8)
    R[0, 10, 10] = 0.9  # one hot spot
    B = torch.zeros(1, 32, 32)
    B[0, 0, 0] = 1
    f = correction_inputs(R, torch.zeros_like(R), torch.zeros_like(R), B, db_span=120.0)
    assert f.shape == (1, CORRECTION_CHANNELS, 32, 32)
    high = f[0, 5]
    assert high[10, 10] == 1 and high.sum() == 1  # within 10 dB of the open maximum: only the spot
    assert torch.isfinite(f).all()


def test_predict_sample_is_a_residual_on_the_boost_map_and_eps_converts_back():
    torch.manual_seed(0)
    den = build_networks(preset("tiny")).denoiser.eval()
    g = torch.Generator().manual_seed(1)
    x_t, S, M, R = (torch.randn(2, 32, 32, generator=g) for _ in range(4))
    B = torch.zeros(2, 32, 32)
    t = torch.tensor([100, 700])
    ones, flags = torch.ones(2), torch.tensor([1.0, 0.0])
    with torch.no_grad():
        raw = den(denoiser_inputs(x_t, B, S, M, R, ones, flags), t)[:, 0]
        x0 = predict(den, x_t, t, B, S, M, R, ones, flags, "sample")
        eps = predict(den, x_t, t, B, S, M, R, ones, flags, "epsilon")
        sa, s1 = torch.tensor(0.6), torch.tensor(0.8)
        eps_from_x0 = predict_eps(den, x_t, t, B, S, M, R, ones, flags, "sample", sa, s1)
    torch.testing.assert_close(x0[0], raw[0] + R[0])  # boosted map: residual on R̂
    torch.testing.assert_close(x0[1], raw[1])  # no boost: plain output
    assert torch.equal(eps, raw)
    torch.testing.assert_close((x_t - s1 * eps_from_x0) / sa, x0, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="prediction_type 'v_prediction' is not supported"):
        predict(den, x_t, t, B, S, M, R, ones, flags, "v_prediction")
