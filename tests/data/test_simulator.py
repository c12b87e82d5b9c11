"""The procedural layouts and the vectorised simulator: interface, determinism and physics sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wifidiff_fast.data.layouts import random_layouts
from wifidiff_fast.data.simulator import (
    SimBatch,
    SimConfig,
    _obstruction_loss,
    _polar_frames,
    _wrap,
    simulate_batch,
    simulate_scenes,
)
from wifidiff_fast.data.units import P_MAX_DBM, P_MIN_DBM

# Open area, one transmitter, no randomness in the propagation: the physics tests build on this.
CLEAN = dict(
    shadowing=False,
    building_fraction_range=(0.0, 0.0),
    mast_building_fraction_range=(0.0, 0.0),
    freq_mhz=2400.0,
)


def _radial(rss: np.ndarray, tx, radii):
    """Mean RSS on rings of 1 px width around ``tx``."""
    rr, cc = np.mgrid[: rss.shape[0], : rss.shape[1]]
    d = np.hypot(rr - tx[0], cc - tx[1])
    return np.array([rss[(d >= r) & (d < r + 1)].mean() for r in radii])


# ------------------------------------------------------------------ interface


def test_shapes_dtypes_ranges():
    sb = simulate_batch(8, 64, seed=3)
    assert isinstance(sb, SimBatch)
    assert sb.rss_dbm.shape == (8, 64, 64) and sb.rss_dbm.dtype == torch.float32
    assert torch.isfinite(sb.rss_dbm).all()
    assert sb.rss_dbm.min() >= P_MIN_DBM and sb.rss_dbm.max() <= P_MAX_DBM
    assert sb.buildings.shape == (8, 64, 64) and sb.buildings.dtype == torch.uint8
    assert set(sb.buildings.unique().tolist()) <= {0, 1}
    assert sb.tx_rc.shape == (8, 3, 2) and sb.tx_rc.dtype == torch.float32
    assert sb.n_tx.dtype == torch.int64 and ((sb.n_tx >= 1) & (sb.n_tx <= 3)).all()
    used = torch.arange(3)[None] < sb.n_tx[:, None]
    assert torch.isfinite(sb.tx_rc[used]).all() and torch.isnan(sb.tx_rc[~used]).all()
    assert sb.freq_mhz.dtype == torch.float32
    assert ((sb.freq_mhz >= 1750) & (sb.freq_mhz <= 5750)).all()


def test_scenario_mix_and_region_geometry():
    sb = simulate_batch(32, 32, seed=0)
    region = sb.is_region
    assert 0 < int(region.sum()) < 32  # both scenarios appear
    assert (sb.n_tx[region] == 3).all() and sb.is_mast[region].all()
    t = sb.tx_rc[region]
    # BRAT placement (H/4, W/4), (H/4, 3W/4), (3H/4, W/2): sites 1 and 2 share a row, site 3 is
    # midway in columns (each site is jittered by at most 0.5 px).
    assert (t[:, 0, 0] - t[:, 1, 0]).abs().max() <= 1.0
    assert (t[:, 2, 1] - (t[:, 0, 1] + t[:, 1, 1]) / 2).abs().max() <= 1.0
    # Random maps put some transmitters outside the grid.
    rnd = sb.tx_rc[~region][torch.arange(3)[None] < sb.n_tx[~region][:, None]]
    assert ((rnd < 0) | (rnd > 31)).any()


def test_determinism():
    a, b = simulate_batch(4, 48, seed=11), simulate_batch(4, 48, seed=11)
    for f in ("rss_dbm", "buildings", "n_tx", "freq_mhz"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    assert torch.equal(torch.nan_to_num(a.tx_rc), torch.nan_to_num(b.tx_rc))
    c = simulate_batch(4, 48, seed=12)
    assert not torch.equal(a.rss_dbm, c.rss_dbm)
    # A generator is a stream: two batches from one generator differ, and replay identically.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x1, x2 = simulate_batch(2, 32, g1), simulate_batch(2, 32, g1)
    y1 = simulate_batch(2, 32, g2)
    assert torch.equal(x1.rss_dbm, y1.rss_dbm) and not torch.equal(x1.rss_dbm, x2.rss_dbm)


def test_simulate_scenes():
    s = simulate_scenes(3, 32, seed=4)
    assert [x.name for x in s] == ["sim_s4_i0", "sim_s4_i1", "sim_s4_i2"]
    for x in s:
        assert x.rss_dbm.shape == (32, 32) and x.rss_dbm.dtype == np.float32
        assert np.isnan(x.rss_dbm[x.buildings == 1]).all()
        assert np.isfinite(x.rss_dbm[x.buildings == 0]).all()
        assert 1 <= len(x.tx_rc) <= 3 and x.source == "wifidiff_fast simulator (seed 4)"
        assert 1750 <= x.freq_mhz <= 5750
    again = simulate_scenes(3, 32, seed=4)
    assert all(np.array_equal(a.rss_dbm, b.rss_dbm, equal_nan=True) for a, b in zip(s, again))


@pytest.mark.parametrize(
    "call",
    [
        lambda: simulate_batch(0, 64),
        lambda: simulate_batch(2, 8),
        lambda: simulate_batch(2, 64.0),
        lambda: simulate_batch(2, 64, seed="x"),
        lambda: simulate_batch(2, 32, config=SimConfig(buildings=np.zeros((16, 16)))),
        lambda: SimConfig(scenario="city"),
        lambda: SimConfig(tx_kind="satellite"),
        lambda: SimConfig(n_tx=4),
        lambda: SimConfig(tx_rc=((1, 2, 3),)),
        lambda: simulate_scenes(0),
        lambda: random_layouts(1, 15, torch.Generator()),
        lambda: random_layouts(0, 32, torch.Generator()),
        lambda: random_layouts(1, 32, torch.Generator(), fraction_range=(0.5, 0.2)),
    ],
)
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


# ------------------------------------------------------------------ layouts


def test_layouts():
    g = torch.Generator().manual_seed(0)
    b = random_layouts(16, 96, g)
    assert b.shape == (16, 96, 96) and b.dtype == torch.uint8
    frac = b.float().mean((1, 2))
    assert (frac > 0.02).all() and (frac < 0.36).all()
    assert torch.equal(b, random_layouts(16, 96, torch.Generator().manual_seed(0)))
    assert random_layouts(2, 32, g, fraction_range=(0.0, 0.0)).sum() == 0


# ------------------------------------------------------------------ physics


@pytest.mark.parametrize("n", [2.0, 3.0])
def test_log_distance_slope(n):
    """One isotropic AP at receiver height in the open: slope = 10·n dB per decade."""
    tx = (64.0, 64.0)
    cfg = SimConfig(
        tx_rc=(tx,),
        tx_kind="ap",
        path_loss_exp=n,
        pixel_m=1.0,
        ap_height_m_range=(1.5, 1.5),
        ap_power_dbm_range=(20.0, 20.0),
        **CLEAN,
    )
    rss = simulate_batch(1, 128, 0, config=cfg).rss_dbm[0].numpy()
    radii = np.arange(4, 60, 2)
    prof = _radial(rss, tx, radii)
    slope = np.polyfit(np.log10(radii + 0.5), prof, 1)[0]
    assert slope == pytest.approx(-10 * n, abs=0.6)


def test_building_casts_shadow():
    """A building between the AP and a point lowers the RSS there, and only behind it."""
    N, tx = 96, (48.0, 20.0)
    wall = np.zeros((N, N), np.uint8)
    wall[38:58, 45:52] = 1
    base = dict(tx_rc=(tx,), tx_kind="ap", path_loss_exp=2.0, pixel_m=1.0, shadowing=False, freq_mhz=2400.0)
    with_b = simulate_batch(1, N, 0, config=SimConfig(buildings=wall, **base)).rss_dbm[0]
    without = simulate_batch(1, N, 0, config=SimConfig(buildings=np.zeros_like(wall), **base)).rss_dbm[0]
    # Smallest possible loss: 3 dB wall + 7 px · 0.5 dB, soft-capped: > 5 dB.
    assert with_b[48, 80] < without[48, 80] - 5.0  # behind the building
    assert with_b[10, 80] == pytest.approx(float(without[10, 80]), abs=1e-4)  # beside it, open ray
    assert with_b[48, 30] == pytest.approx(float(without[48, 30]), abs=1e-4)  # in front of it


def test_mast_site_pixel_is_not_argmax():
    """Elevated, down-tilted sector antennas: weaker at the site than on a ring a few px out."""
    tx = (64.0, 64.0)
    cfg = SimConfig(
        tx_rc=(tx,),
        tx_kind="mast",
        pixel_m=25.0,
        path_loss_exp=2.0,
        mast_height_m_range=(30.0, 30.0),
        mast_downtilt_deg_range=(10.0, 10.0),
        **CLEAN,
    )
    rss = simulate_batch(1, 128, 0, config=cfg).rss_dbm[0].numpy()
    r, c = np.unravel_index(rss.argmax(), rss.shape)
    dist = np.hypot(r - tx[0], c - tx[1])
    assert rss[64, 64] < rss.max() - 1.0
    assert 3.0 <= dist <= 12.0  # h / tan(tilt) = 170 m = 6.8 px
    # BRAT-like levels: maximum near −20 dBm at 1750–2400 MHz.
    assert -28.0 < rss.max() < -15.0


def test_mast_sector_pattern_and_rotation():
    """Three sectors: the ring of maximum is modulated in azimuth (not isotropic)."""
    tx = (64.0, 64.0)
    cfg = SimConfig(tx_rc=(tx,), tx_kind="mast", pixel_m=25.0, **CLEAN)
    rss = simulate_batch(1, 128, 0, config=cfg).rss_dbm[0].numpy()
    rr, cc = np.mgrid[:128, :128]
    ring = rss[(np.hypot(rr - 64, cc - 64) > 15) & (np.hypot(rr - 64, cc - 64) < 17)]
    assert ring.max() - ring.min() > 2.0


def test_frequency_drop_matches_free_space():
    """Same scene at two frequencies: the open-area drop is 20·log10(f2/f1) (BRAT's peaks do this)."""
    kw = dict(
        tx_rc=((32.0, 32.0),),
        tx_kind="ap",
        path_loss_exp=2.0,
        pixel_m=1.0,
        shadowing=False,
        building_fraction_range=(0.0, 0.0),
    )
    a = simulate_batch(1, 64, 0, config=SimConfig(freq_mhz=1750.0, **kw)).rss_dbm
    b = simulate_batch(1, 64, 0, config=SimConfig(freq_mhz=5750.0, **kw)).rss_dbm
    assert float((a - b).median()) == pytest.approx(20 * np.log10(5750 / 1750), abs=1e-3)


@pytest.mark.parametrize("tx", [(20.3, 17.7), (-30.0, 60.0), (50.0, -5.0)])
def test_polar_ray_march_matches_dense_march(tx):
    """The polar cumulative sum equals a dense 4000-point march along each ray (no moiré, no seam)."""
    N = 48
    occ = random_layouts(
        1, N, torch.Generator().manual_seed(0), scale=0.4, fraction_range=(0.2, 0.25)
    ).float()
    txt = torch.tensor([tx])
    rr = torch.arange(N).float()[None, :, None].expand(1, N, N)
    cc = torch.arange(N).float()[None, None, :].expand(1, N, N)
    dr, dc = rr - txt[:, 0, None, None], cc - txt[:, 1, None, None]
    rho = (dr**2 + dc**2).sqrt()
    frames = _polar_frames(txt, N, N)
    ref = frames[0][:, None, None]
    theta = ref + _wrap(torch.atan2(dr, dc) - ref)
    coef = torch.tensor([[0.0, 1.0, 1e6, 0.0]])  # loss = building length in px (cap far away)
    got = _obstruction_loss(occ, txt, coef, rho, theta, frames, 1.0)[0]
    K = 4000
    s = (torch.arange(K) + 0.5) / K
    grid = torch.stack(
        [
            (txt[0, 1] + s[:, None, None] * dc[0]) / (N - 1) * 2 - 1,
            (txt[0, 0] + s[:, None, None] * dr[0]) / (N - 1) * 2 - 1,
        ],
        -1,
    )
    dense = F.grid_sample(occ.expand(K, 1, N, N), grid, align_corners=True)[:, 0].mean(0) * rho[0]
    err = (got - dense)[occ[0] == 0].abs()
    assert float(err.mean()) < 0.08 and float(err.max()) < 0.8


def test_fixed_transmitter_outside_map_is_smooth():
    """A transmitter outside the grid still lights it, with no NaNs and a smooth open-area field."""
    cfg = SimConfig(tx_rc=((-40.0, 100.0),), tx_kind="ap", pixel_m=1.0, path_loss_exp=2.0, **CLEAN)
    rss = simulate_batch(1, 64, 0, config=cfg).rss_dbm[0]
    assert torch.isfinite(rss).all()
    assert float(rss.diff(dim=0).abs().max()) < 1.0 and float(rss.diff(dim=1).abs().max()) < 1.0


@pytest.mark.gpu
def test_cuda_matches_cpu():
    a = simulate_batch(2, 64, 1, device="cpu")
    b = simulate_batch(2, 64, 1, device="cuda")
    assert (a.buildings != b.buildings.cpu()).float().mean() < 1e-3
    assert torch.equal(torch.nan_to_num(a.tx_rc), torch.nan_to_num(b.tx_rc.cpu()))
    assert float((a.rss_dbm - b.rss_dbm.cpu()).abs().median()) < 0.01


def test_prior_mast_model_uses_the_calibrated_physics():
    """mast_model="prior": a mast map is the calibrated prior (plus the drawn shadowing)."""
    from wifidiff_fast.physics.prior import load_calibration, prior_map

    cfg = SimConfig(
        scenario="random",
        tx_kind="mast",
        n_tx=1,
        tx_rc=((20.0, 30.0),),
        freq_mhz=5750.0,
        mast_model="prior",
        shadowing=False,
    )
    sb = simulate_batch(1, 48, seed=0, config=cfg)
    b = sb.buildings[0].numpy()
    expected = prior_map(
        b, np.array([[20.0, 30.0]], np.float32), 5750.0, load_calibration(), step_px=1.0
    ).numpy()
    # same physics up to the sector rotation the simulator draws: compare away from the ring,
    # where the three-sector ripple is small, through the median difference
    diff = sb.rss_dbm[0].numpy() - expected
    assert abs(float(np.median(diff))) < 3.0
    assert np.corrcoef(sb.rss_dbm[0].numpy().ravel(), expected.ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="mast_model"):
        SimConfig(mast_model="exact")
