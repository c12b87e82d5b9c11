"""The prior's correction curves (version 3): interpolation, the fit, validation, and that a
version-2 block (no curves) predicts exactly as before."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from wifidiff_fast.physics.curves import CURVE_KNOTS, check_curves, curve_features, curves_db, fit_curves
from wifidiff_fast.physics.prior import PropagationParams, site_geometry, site_power_db


def _geom(points, buildings=None, tx=((32.0, 32.0),)):
    b = np.zeros((64, 64), np.uint8) if buildings is None else buildings
    return site_geometry(torch.as_tensor(b), torch.tensor(tx), torch.tensor(points, dtype=torch.float32))


def _flat_curves(**overrides):
    """Zero curves on the standard knots, with ``overrides`` {feature: values}."""
    values = {k: [0.0] * len(v) for k, v in CURVE_KNOTS.items()}
    values.update(overrides)
    return {"knots": {k: list(v) for k, v in CURVE_KNOTS.items()}, "values": values}


def test_curves_interpolate_linearly_between_knots_and_clamp_beyond_them():
    params = PropagationParams(height_px=1e-3)
    knots = CURVE_KNOTS["log_distance"]
    values = [float(i) for i in range(len(knots))]  # φ(x) = x / knot spacing
    curves = _flat_curves(log_distance=values)
    # points 10 px and 10^(mid-knot) px due east (sector curve is zero, no buildings)
    mid = 0.5 * (knots[5] + knots[6])
    pts = [[32.0, 32.0 + 10.0], [32.0, 32.0 + 10**mid]]
    got = curves_db(_geom(pts), params, curves)[0]
    spacing = knots[1] - knots[0]
    assert float(got[0]) == pytest.approx(1.0 / spacing, abs=1e-3)
    assert float(got[1]) == pytest.approx(5.5, abs=1e-3)
    # beyond the last knot the curve holds its end value
    far = curves_db(_geom([[32.0, 32.0 + 10 ** (knots[-1] + 0.5)]]), params, curves)[0]
    assert float(far[0]) == pytest.approx(values[-1], abs=1e-4)


def test_sector_feature_is_the_angle_off_the_nearest_boresight():
    params = PropagationParams()
    # boresights at 0° (north), 120°, 240° clockwise: north of the site lies on one (0°), east
    # (90°) is 30° off the 120° sector, south (180°) midway between two (60°)
    g = _geom([[10.0, 32.0], [32.0, 60.0], [54.0, 32.0]])
    deg = curve_features(g, params)["sector_deg"][0]
    assert deg.tolist() == pytest.approx([0.0, 30.0, 60.0], abs=1e-3)


def test_an_omni_site_skips_the_sector_curve():
    params = PropagationParams()
    curves = _flat_curves(sector_deg=[5.0] * len(CURVE_KNOTS["sector_deg"]))
    g = _geom([[10.0, 32.0]])
    assert float(curves_db(g, params, curves)[0, 0]) == pytest.approx(5.0)
    assert float(curves_db(g, params, curves, sector=False)[0, 0]) == 0.0


def test_fit_recovers_a_known_additive_residual():
    rng = np.random.default_rng(0)
    n = 20000
    feats = {
        "log_distance": rng.uniform(0.3, 2.5, n),
        "sector_deg": rng.uniform(0, 60, n),
        "walls": rng.integers(0, 8, n).astype(float),
        "length_px": rng.uniform(0, 90, n),
        "exit_px": rng.uniform(0, 200, n),
    }
    truth = 0.08 * feats["sector_deg"] - 2.0 * (feats["log_distance"] - 1.4) ** 2 + 0.3 * feats["walls"]
    residual = truth - truth.mean() + rng.normal(0, 1.0, n)
    curves = fit_curves(feats, residual)
    check_curves(curves)
    rows = {k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in feats.items()}
    # evaluate the fitted curves through the same interpolation the prior uses
    pred = np.zeros(n)
    for name, knots in curves["knots"].items():
        k = np.asarray(knots)
        pred += np.interp(np.clip(rows[name][0].numpy(), k[0], k[-1]), k, curves["values"][name])
    err = pred - (truth - truth.mean())
    assert np.sqrt(np.mean(err**2)) < 0.2  # far below the 1 dB noise: the shape is recovered
    sector = curves["values"]["sector_deg"]
    assert sector[-1] - sector[0] == pytest.approx(0.08 * 60, abs=0.4)


def test_a_version_2_block_predicts_as_the_scalars_and_curves_shift_each_site():
    params = PropagationParams()
    g = _geom([[5.0, 20.0], [40.0, 50.0]])
    base = site_power_db(g, params, 5750.0)
    v2 = PropagationParams.from_dict({**params.to_dict(), "version": 2})
    assert torch.equal(site_power_db(g, v2, 5750.0), base)
    curves = _flat_curves(walls=[1.5] * len(CURVE_KNOTS["walls"]))
    with_curves = replace(params, curves=curves)
    assert torch.allclose(site_power_db(g, with_curves, 5750.0), base + 1.5)


@pytest.mark.parametrize(
    "bad",
    [
        {"knots": {"height": [0, 1]}, "values": {"height": [0, 0]}},
        {"knots": {"walls": [0, 1, 1]}, "values": {"walls": [0, 0, 0]}},
        {"knots": {"walls": [0, 1]}, "values": {"walls": [0]}},
        {"knots": {"walls": [0, 1]}, "values": {"walls": [0, float("nan")]}},
        {"values": {}},
        [1, 2],
    ],
)
def test_malformed_curves_are_rejected_with_the_fix(bad):
    with pytest.raises(ValueError, match="curve|calibrate"):
        PropagationParams.from_dict({**PropagationParams().to_dict(), "curves": bad})


def test_calibration_fits_curves_that_explain_a_planted_effect():
    """A region whose truth is the scalar prior plus a sector effect the scalars cannot take
    (+0.1 dB per degree off boresight): the fitted curves find it and cut the residual."""
    from types import SimpleNamespace

    from wifidiff_fast.physics.calibrate import fit_prior_curves
    from wifidiff_fast.physics.prior import power_sum_db

    rng = np.random.default_rng(1)
    H = W = 96
    b = np.zeros((H, W), np.uint8)
    for _ in range(25):  # scattered blocks
        r, c = rng.integers(0, H - 8, 2)
        b[r : r + 6, c : c + 6] = 1
    tx = np.array([[20.0, 20.0], [20.0, 75.0], [75.0, 48.0]], np.float32)
    b[tx[:, 0].astype(int), tx[:, 1].astype(int)] = 0
    params = PropagationParams(height_px=2.0)
    rr, cc = np.mgrid[:H, :W]
    pts = np.column_stack([rr.ravel(), cc.ravel()]).astype(np.float32)
    g = site_geometry(torch.as_tensor(b), torch.as_tensor(tx), torch.as_tensor(pts))
    planted = 0.1 * curve_features(g, params)["sector_deg"]
    freqs = np.array([1750.0, 5750.0])
    rss = np.stack([power_sum_db(site_power_db(g, params, f) + planted).numpy().reshape(H, W) for f in freqs])
    region = SimpleNamespace(buildings=b, tx_rc=tx, freqs_mhz=freqs, rss_dbm=rss)

    fitted = fit_prior_curves(region, params, n_points=4000)
    assert fitted.version == 3 and fitted.curves is not None
    sector = fitted.curves["values"]["sector_deg"]
    assert sector[-1] - sector[0] == pytest.approx(6.0, abs=1.0)  # 0.1 dB/° over 60°
    open_px = b.ravel() == 0
    for j, f in enumerate(freqs):
        before = rss[j].ravel() - power_sum_db(site_power_db(g, params, f)).numpy()
        after = rss[j].ravel() - power_sum_db(site_power_db(g, fitted, f)).numpy()
        assert np.std(after[open_px]) < 0.5 * np.std(before[open_px])
