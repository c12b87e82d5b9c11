"""The propagation prior: free-space slope, shadow behind a wall, the sector pattern, power sum,
calibration block checks."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from wifidiff_fast.physics.antenna import sector_gain_db
from wifidiff_fast.physics.prior import (
    CALIBRATION_PATH,
    PRIOR_VERSION,
    PropagationParams,
    load_calibration,
    power_sum_db,
    prior_map,
    site_geometry,
    site_power_db,
)

OMNI = PropagationParams(
    p_ref_dbm=0.0,
    path_loss_exp=2.0,
    freq_db_per_decade=20.0,
    height_px=0.01,
    omni=True,
    wall_db=6.0,
    pen_db_per_px=1.0,
    cap_db=20.0,
    loss_freq_exp=0.0,
)


def _power(b, tx, pts, params, freq=1750.0):
    g = site_geometry(
        torch.as_tensor(b), torch.tensor(tx, dtype=torch.float32), torch.tensor(pts, dtype=torch.float32)
    )
    return site_power_db(g, params, freq)[0]


def test_free_space_slope_is_ten_n_db_per_decade():
    b = np.zeros((128, 128), np.uint8)
    p = _power(b, [[0.0, 0.0]], [[0.0, 10.0], [0.0, 100.0]], OMNI)
    assert float(p[0] - p[1]) == pytest.approx(20.0, abs=0.01)  # n = 2
    # and with frequency: 20 dB per decade
    hi = _power(b, [[0.0, 0.0]], [[0.0, 10.0]], OMNI, freq=17500.0)
    assert float(p[0] - hi[0]) == pytest.approx(20.0, abs=0.01)


def test_a_wall_casts_a_shadow_of_the_soft_capped_loss_that_diffraction_fills_in():
    b = np.zeros((64, 64), np.uint8)
    b[20:24, :] = 1  # 4 px thick, across the grid
    # behind the wall (16.5 px past its far side) vs the same distance in line of sight
    p = _power(b, [[5.0, 32.0]], [[40.0, 32.0], [5.0, 32.0 + 35.0 - 1e-3]], OMNI)
    x = 6.0 * 1 + 1.0 * 4.0
    expected = 20.0 * (1 - math.exp(-x / 20.0))  # no recovery: OMNI keeps D = 1e4
    assert float(p[1] - p[0]) == pytest.approx(expected, abs=0.6)
    assert float(p[1] - p[0]) > 5.0
    # with a recovery length D the loss shrinks as D / (D + distance behind the wall)
    rec = _power(
        b, [[5.0, 32.0]], [[40.0, 32.0], [5.0, 32.0 + 35.0 - 1e-3]], replace(OMNI, shadow_recovery_px=16.5)
    )
    assert float(rec[1] - rec[0]) == pytest.approx(expected * 16.5 / (16.5 + 16.5), abs=0.6)


def test_sector_pattern_peaks_on_boresight_and_dips_between_sectors():
    az = torch.deg2rad(torch.tensor([0.0, 120.0, 240.0, 60.0, 180.0]))
    g = sector_gain_db(az, torch.full((5,), 10.0), 0.0, 10.0, 10.0)
    assert torch.allclose(g[:3], g[0].expand(3), atol=1e-4)
    assert float(g[0]) == pytest.approx(0.0, abs=0.05)  # boresight, on the tilt
    # halfway between two 65° sectors: each is 12·(60/65)² down, the two add 3 dB, the third
    # (180° off) is at the 25 dB front-to-back floor
    a = -12 * (60 / 65) ** 2
    assert float(g[3]) == pytest.approx(10 * math.log10(2 * 10 ** (a / 10) + 10**-2.5), abs=1e-3)
    assert float(g[3]) == pytest.approx(float(g[4]), abs=1e-4)


def test_downtilt_puts_the_maximum_on_a_ring_not_under_the_mast():
    p = PropagationParams(height_px=2.0, tilt_deg=10.0, vbeam_deg=8.0, path_loss_exp=2.0, cap_db=1.0)
    b = np.zeros((96, 96), np.uint8)
    d = np.arange(1, 40, dtype=np.float32)
    pts = np.stack([np.full_like(d, 48.0), 48.0 + d], 1)
    prof = _power(b, [[48.0, 48.0]], pts, p).numpy()
    ring = 2.0 / math.tan(math.radians(10.0))  # ≈ 11.3 px
    assert abs(float(d[np.argmax(prof)]) - ring) < 4.0
    # a null inside the ring, deeper than the ring's peak by > 5 dB (BRAT's ring of minima)
    assert prof[: int(np.argmax(prof))].min() < prof.max() - 5.0


def test_sites_add_in_linear_power():
    a = torch.tensor([[-60.0], [-60.0]])
    assert float(power_sum_db(a)[0]) == pytest.approx(-60.0 + 10 * math.log10(2), abs=1e-4)
    b = torch.tensor([[-60.0], [-90.0]])
    assert float(power_sum_db(b)[0]) == pytest.approx(-60.0, abs=0.01)


def test_prior_map_shape_and_finite():
    b = np.zeros((40, 48), np.uint8)
    b[10:14, 5:40] = 1
    m = prior_map(b, [[-10.0, 20.0], [30.0, 30.0]], 5750.0, load_calibration())
    assert m.shape == (40, 48) and torch.isfinite(m).all()


def test_shipped_calibration_is_current_and_checked_on_another_region():
    blob = json.loads(CALIBRATION_PATH.read_text())
    assert blob["prior_version"] == PRIOR_VERSION
    assert blob["check_region"] != 1 and "region 1" in blob["fitted_on"]
    # the record carries a real check: every band scored on the unseen region
    assert set(blob["check_scores"]) == {"1750", "2750", "3750", "4750", "5750"}
    assert all(0.5 < v["offset_rmse_db"] < 10.0 for v in blob["check_scores"].values())


def test_calibration_block_errors_name_the_fix(tmp_path):
    good = load_calibration().to_dict()
    with pytest.raises(ValueError, match="version"):
        PropagationParams.from_dict({**good, "version": PRIOR_VERSION + 1})
    with pytest.raises(ValueError, match="unknown fields"):
        PropagationParams.from_dict({**good, "bogus": 1})
    with pytest.raises(ValueError, match="calibrate"):
        load_calibration(tmp_path / "missing.json")
