"""Metrics against values computed by hand on tiny maps.

On the package range (−130…−10 dBm) the [0, 1] scale is y = (p + 130)/120, so −70 dBm → 0.5,
−10 dBm → 1.0, −82 dBm → 0.4, −130 dBm → 0.0.
"""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from wifidiff_fast.eval import METRICS, mse, nmse, psnr, rmse, rmse_db, ssim
from wifidiff_fast.eval.metrics import all_metrics

NAN = np.nan


def _pair():
    # target: two scored pixels (0.5 and 1.0 on [0,1]) and one building (NaN)
    target = np.array([[-70.0, -10.0], [NAN, -70.0]])
    pred = np.array([[-82.0, -10.0], [-50.0, -70.0]])
    # scored: (0,0): 0.4 vs 0.5 -> err 0.01 ; (0,1): 0 ; (1,1): 0   (the building is skipped)
    return pred, target


def test_hand_values_default_mask_skips_nan_target():
    pred, target = _pair()
    assert mse(pred, target) == pytest.approx(0.01 / 3)
    assert rmse(pred, target) == pytest.approx(math.sqrt(0.01 / 3))
    assert nmse(pred, target) == pytest.approx(0.01 / (0.25 + 1.0 + 0.25))
    assert psnr(pred, target) == pytest.approx(20 * math.log10(1 / math.sqrt(0.01 / 3)))
    assert rmse_db(pred, target) == pytest.approx(math.sqrt(144.0 / 3))


def test_explicit_mask_selects_pixels():
    pred, target = _pair()
    mask = np.array([[True, True], [False, False]])
    assert mse(pred, target, mask) == pytest.approx(0.005)
    assert nmse(pred, target, mask) == pytest.approx(0.01 / 1.25)
    assert rmse_db(pred, target, mask) == pytest.approx(math.sqrt(72.0))
    # a 0/1 integer mask means the same thing
    assert mse(pred, target, mask.astype(np.uint8)) == pytest.approx(0.005)
    # mask only the perfect pixels -> zero error, infinite PSNR
    perfect = np.array([[False, True], [False, True]])
    assert mse(pred, target, perfect) == 0.0
    assert psnr(pred, target, perfect) == math.inf


def test_clipping_to_package_range():
    # below −130 dBm clips to 0 on the [0,1] scale; rmse_db does not clip
    target = np.full((2, 2), -130.0)
    pred = np.full((2, 2), -160.0)
    assert mse(pred, target) == 0.0
    assert rmse_db(pred, target) == pytest.approx(30.0)


def test_torch_inputs_match_numpy():
    pred, target = _pair()
    for name, fn in METRICS.items():
        if name == "ssim":
            continue
        assert fn(torch.tensor(pred), torch.tensor(target)) == pytest.approx(fn(pred, target)), name


def test_pred_nan_at_scored_pixel_raises_but_not_at_building():
    pred, target = _pair()
    pred_ok = pred.copy()
    pred_ok[1, 0] = NAN  # building pixel
    assert mse(pred_ok, target) == pytest.approx(0.01 / 3)
    for bad in (NAN, np.inf):
        p = pred.copy()
        p[0, 1] = bad
        for fn in METRICS.values():
            with pytest.raises(ValueError, match="pred"):
                fn(p, target)


def test_target_nan_inside_explicit_mask_raises():
    pred, target = _pair()
    with pytest.raises(ValueError, match="target"):
        mse(pred, target, np.ones((2, 2), bool))


@pytest.mark.parametrize("fn", list(METRICS.values()))
def test_bad_inputs(fn):
    pred, target = _pair()
    with pytest.raises(ValueError, match="same shape"):
        fn(pred, target[:, :1])
    with pytest.raises(ValueError, match="2-D"):
        fn(pred[None], target[None])
    with pytest.raises(ValueError, match="mask"):
        fn(pred, target, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="boolean"):
        fn(pred, target, np.full((2, 2), 2))
    with pytest.raises(ValueError, match="no pixel"):
        fn(pred, target, np.zeros((2, 2), bool))
    with pytest.raises(TypeError):
        fn(np.array([["a", "b"], ["c", "d"]]), target)


def test_nmse_zero_target_is_an_error():
    t = np.full((2, 2), -130.0)  # 0 on the [0,1] scale
    with pytest.raises(ValueError, match="undefined"):
        nmse(np.full((2, 2), -100.0), t)


def test_ssim_constant_maps_hand_value():
    # constant maps: variances/covariance are 0, so SSIM = (2ab + C1)/(a² + b² + C1), C1 = (0.01·1)²
    target = np.full((9, 9), -70.0)  # 0.5
    pred = np.full((9, 9), -82.0)  # 0.4
    c1 = 1e-4
    assert ssim(pred, target) == pytest.approx((2 * 0.5 * 0.4 + c1) / (0.25 + 0.16 + c1))
    assert ssim(target, target) == pytest.approx(1.0)


def test_ssim_equals_skimage_when_every_pixel_scored():
    rng = np.random.default_rng(0)
    target = rng.uniform(-100, -40, size=(20, 24))
    pred = target + rng.normal(0, 5, size=target.shape)
    expected = structural_similarity((target + 130) / 120, (pred + 130) / 120, data_range=1.0)
    assert ssim(pred, target) == pytest.approx(expected, rel=1e-9)


def test_ssim_ignores_pred_at_unscored_pixels():
    rng = np.random.default_rng(1)
    target = rng.uniform(-100, -40, size=(16, 16))
    target[4:9, 5:11] = NAN  # a building
    pred = np.where(np.isfinite(target), target + rng.normal(0, 3, size=target.shape), -60.0)
    other = pred.copy()
    other[4:9, 5:11] = -20.0  # anything on the building
    s1, s2 = ssim(pred, target), ssim(other, target)
    assert s1 == s2
    assert 0.0 < s1 < 1.0
    # a perfect prediction scores 1 whatever it holds on the building
    perfect = np.where(np.isfinite(target), target, 0.0)
    assert ssim(perfect, target) == pytest.approx(1.0)


def test_ssim_too_small_grid():
    with pytest.raises(ValueError, match="3x3"):
        ssim(np.zeros((2, 5)) - 50, np.zeros((2, 5)) - 50)


def test_all_metrics_keys():
    pred, target = _pair()
    pred3 = np.pad(pred, 2, mode="edge")
    target3 = np.pad(target, 2, mode="edge")
    out = all_metrics(pred3, target3)
    assert set(out) == {"mse", "rmse", "nmse", "psnr", "ssim", "rmse_db"}
