"""Sionna RT generator: mesh extrusion (always) and tiny ray-traced maps (when sionna-rt imports)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wifidiff_fast import raytrace as R
from wifidiff_fast.data.units import P_MIN_DBM

# ---------------------------------------------------------------------------------------------
# Pure geometry: no Sionna needed
# ---------------------------------------------------------------------------------------------


def test_extrude_single_box_is_closed_and_outward():
    h = np.zeros((6, 6), np.float32)
    h[2:4, 1:4] = 12.0  # 2 x 3 px building
    v, f = R.extrude_mesh(h, pixel_m=2.0)
    # roof 6 px + walls: 2*(3+2) = 10 pixel edges, 2 triangles each
    assert f.shape == (2 * (6 + 10), 3)
    assert v[:, 2].max() == pytest.approx(12.0) and v[:, 2].min() == pytest.approx(0.0)
    # Every edge above ground is shared by exactly two triangles (watertight apart from z=0).
    edges = {}
    for tri in f:
        for a, b in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
            edges.setdefault(tuple(sorted((int(a), int(b)))), []).append((int(a), int(b)))
    for (a, b), uses in edges.items():
        if v[a, 2] > 0 or v[b, 2] > 0:
            assert len(uses) == 2, (v[a], v[b], uses)
            assert uses[0] != uses[1], "adjacent faces must traverse a shared edge in opposite directions"
    # Outward normals: the summed signed volume of a closed, outward surface is positive.
    tri = v[f].astype(np.float64)
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert vol == pytest.approx(2 * 3 * 4.0 * 12.0, rel=1e-5)
    # Footprint: 3 px wide (x, 6 m) and 2 px high (y, 4 m), centred per pixel_to_xy.
    assert np.ptp(v[:, 0]) == pytest.approx(6.0) and np.ptp(v[:, 1]) == pytest.approx(4.0)


def test_extrude_adjacent_heights_share_a_step_wall():
    h = np.zeros((4, 4), np.float32)
    h[1, 1], h[1, 2] = 10.0, 20.0
    v, f = R.extrude_mesh(h, pixel_m=1.0)
    tri = v[f].astype(np.float64)
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert vol == pytest.approx(30.0, rel=1e-5)
    assert R.extrude_mesh(np.zeros((3, 3)), 2.0)[1].shape == (0, 3)


def test_pixel_to_xy_orientation():
    xy = R.pixel_to_xy(np.array([[0, 0], [9, 9]]), (10, 10), 2.0)
    assert xy[0].tolist() == [-9.0, 9.0]  # top-left pixel: west, north
    assert xy[1].tolist() == [9.0, -9.0]


def test_building_heights_per_building():
    b = np.zeros((10, 10), np.uint8)
    b[1:3, 1:3] = 1
    b[6:9, 5:9] = 1
    h = R.building_heights(b, np.random.default_rng(0), (10.0, 35.0))
    assert (h[b == 0] == 0).all()
    assert len(np.unique(h[1:3, 1:3])) == 1 and len(np.unique(h[6:9, 5:9])) == 1
    assert ((h[b == 1] >= 10) & (h[b == 1] <= 35)).all()


def test_config_rejects_unknown_source():
    with pytest.raises(ValueError):
        R.RTConfig(source="region2")
    assert R.BRAT_TRAIN_REGION == 1  # region 2 is validation and must never feed training data


# ---------------------------------------------------------------------------------------------
# Ray tracing: needs sionna-rt (bash scripts/setup_raytrace.sh)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sionna_rt():
    """Skip (with the reason) unless sionna-rt imports; imported here, not at collection, so the
    rest of the suite never loads Dr.Jit."""
    ok, why = R.sionna_available()
    if not ok:
        pytest.skip(f"sionna-rt not importable: {why}")
    return why


TINY = dict(size=64, margin=8, pixel_m=2.0, rays=200_000, max_depth=2)


@pytest.mark.slow
def test_tiny_map_shape_floor_and_decay(sionna_rt):
    cfg = R.RTConfig(sectors=1, **TINY)
    E = cfg.extent
    heights = np.zeros((E, E), np.float32)
    site = np.array([[E // 2, E // 2]])
    rss = R.trace_map(heights, site, np.array([10.0]), 3500.0, cfg, seed=1)
    assert rss.shape == (64, 64) and rss.dtype == np.float32
    assert np.isfinite(rss).all() and rss.min() >= cfg.floor_dbm
    # Decay with distance (open ground, isotropic antenna).
    rr, cc = np.mgrid[:64, :64]
    d = np.hypot(rr - 32, cc - 32)  # the site sits on pixel (32, 32) of the map
    near, far = np.median(rss[(d > 4) & (d < 10)]), np.median(rss[d > 26])
    assert near > far + 6.0, (near, far)
    assert rss.max() < cfg.tx_power_dbm


@pytest.mark.slow
def test_unreachable_courtyard_is_clipped_to_floor(sionna_rt):
    cfg = R.RTConfig(sectors=1, diffraction=False, refraction=False, **TINY)
    E, m = cfg.extent, cfg.margin
    heights = np.zeros((E, E), np.float32)
    heights[m + 20 : m + 44, m + 20 : m + 44] = 40.0  # a 40 m ring, 6 px thick, around a courtyard
    heights[m + 26 : m + 38, m + 26 : m + 38] = 0.0
    site = np.array([[m + 5, m + 5]])
    rss = R.trace_map(heights, site, np.array([8.0]), 2750.0, cfg, seed=2)
    court = rss[28:36, 28:36]
    assert (court == np.float32(cfg.floor_dbm)).all()
    assert cfg.floor_dbm == P_MIN_DBM
    assert np.median(rss[:15, :15]) > -80.0  # open street near the site is well lit


@pytest.mark.slow
def test_generate_records_resume_and_determinism(sionna_rt, tmp_path):
    cfg = R.RTConfig(source="procedural", **TINY)
    out = tmp_path / "rt"
    s1 = R.generate(out, 2, cfg, seed=5, batch=1, progress=False)
    assert s1["made"] == 2 and s1["skipped"] == 0
    files = sorted(p.name for p in out.glob("*.npz"))
    assert files == ["rt_5_00000.npz", "rt_5_00001.npz"]
    with np.load(out / files[0]) as z:
        assert z["rss_dbm"].shape == (64, 64) and z["rss_dbm"].dtype == np.float32
        b = z["buildings"]
        assert b.dtype == np.uint8 and set(np.unique(b)) <= {0, 1}
        assert np.isnan(z["rss_dbm"][b == 1]).all() and np.isfinite(z["rss_dbm"][b == 0]).all()
        assert (z["rss_dbm"][b == 0] >= P_MIN_DBM).all()
        assert z["tx_rc"].dtype == np.float32 and z["tx_rc"].shape[1] == 2
        assert 1750 <= float(z["freq_mhz"]) <= 5750 and str(z["source"]) == "procedural"
        first = z["rss_dbm"].copy()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"]["5"]["count_done"] == 2
    # Resume: existing maps are skipped, only the new index is made.
    s2 = R.generate(out, 3, cfg, seed=5, batch=2, progress=False)
    assert s2["made"] == 1 and s2["skipped"] == 2
    assert json.loads((out / "manifest.json").read_text())["runs"]["5"]["count_done"] == 3
    # Another config under the same seed is refused.
    with pytest.raises(ValueError):
        R.generate(out, 3, R.RTConfig(source="procedural", **{**TINY, "rays": 1000}), seed=5)
    # Determinism: a map is a pure function of (seed, index, config), bit for bit (Dr.Jit runs
    # single-threaded; multithreaded, the diffraction-wedge table race moved shadows by tens of dB).
    for _ in range(2):
        np.testing.assert_array_equal(R.make_map(5, 0, cfg)["rss_dbm"], first)
    # Worker processes write the very same files.
    out2 = tmp_path / "rt2"
    s3 = R.generate(out2, 2, cfg, seed=5, workers=2, progress=False)
    assert s3["made"] == 2 and s3["workers"] == 2
    for name in files:
        with np.load(out / name) as a, np.load(out2 / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])
