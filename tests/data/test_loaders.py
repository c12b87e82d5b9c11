"""Loaders: the development data (skipped when absent), bundled examples and user files."""

import numpy as np
import pytest

from wifidiff_fast import _env
from wifidiff_fast.data import loaders as L

DATA = _env.data_dir()
needs_brat = pytest.mark.skipif(
    not (DATA / "brat" / "region1.npz").exists() or not (DATA / "brat" / "region2.npz").exists(),
    reason=f"BRAT data not found under {DATA} (set WIFIDIFF_DATA_DIR)",
)
needs_rms = pytest.mark.skipif(
    not (DATA / "radiomapseer_like" / "radiomapseer_map0_dpm.npz").exists(),
    reason=f"RadioMapSeer data not found under {DATA}",
)
needs_ur3d = pytest.mark.skipif(
    not (DATA / "radiomapseer_like" / "urbanradio3d_frame0.npz").exists(),
    reason=f"UrbanRadio3D data not found under {DATA}",
)


def _check_scene(s, size=256):
    assert s.shape == (size, size) and s.rss_dbm.dtype == np.float32 and s.buildings.dtype == np.uint8
    assert np.all(np.isnan(s.rss_dbm[s.buildings == 1]))
    assert np.all(np.isfinite(s.rss_dbm[s.buildings == 0]))
    assert s.source


def test_crop_origins():
    assert L.crop_origins(419, 571) == [(0, 0), (0, 157), (0, 315), (163, 0), (163, 157), (163, 315)]
    assert L.crop_origins(256, 256) == [(0, 0)]
    with pytest.raises(ValueError, match="smaller"):
        L.crop_origins(200, 300)


@needs_brat
def test_brat_regions():
    for k, ranges in ((1, (-93.3, -20.0)), (2, (-87.4, -20.0))):
        scenes = L.brat_scenes(k)
        assert len(scenes) == 30 and len({s.name for s in scenes}) == 30
        assert sorted({s.freq_mhz for s in scenes}) == [1750, 2750, 3750, 4750, 5750]
        for s in scenes:
            _check_scene(s)
            assert s.tx_rc.shape == (3, 2)
            v = s.rss_dbm[s.buildings == 0]
            assert ranges[0] - 0.1 <= v.min() and v.max() <= ranges[1] + 0.5
    band = L.brat_scenes(2, bands_mhz=(5750,))
    assert len(band) == 6 and {s.freq_mhz for s in band} == {5750.0}
    # tx positions are shifted into crop coordinates
    region = L.load_brat_region(2)
    np.testing.assert_array_equal(band[4].tx_rc, region.tx_rc - np.array([163, 157]))


@needs_rms
def test_radiomapseer():
    scenes = L.radiomapseer_scenes()
    assert len(scenes) == 10
    for s in scenes:
        _check_scene(s)
        r, c = s.tx_rc[0]
        assert s.buildings[r, c] == 0
        assert s.rss_dbm[r, c] == pytest.approx(np.nanmax(s.rss_dbm))  # the Tx is the brightest pixel


@needs_ur3d
def test_urbanradio3d_leaves_out_the_suspect_files():
    scenes = L.urbanradio3d_scenes()
    assert len(scenes) == 39
    names = {s.name for s in scenes}
    assert not names & {f"ur3d_{n}" for n in L.URBAN3D_SUSPECT}
    for s in scenes:
        _check_scene(s)


def test_gray_to_dbm_convention():
    np.testing.assert_allclose(L.gray_to_dbm(np.array([0, 255], np.uint8)), [-124.0, -24.84], atol=1e-4)


def test_missing_data_is_a_clear_error(tmp_path):
    for fn in (
        lambda: L.brat_scenes(1, data_dir=tmp_path),
        lambda: L.radiomapseer_scenes(tmp_path),
        lambda: L.urbanradio3d_scenes(tmp_path),
    ):
        with pytest.raises(FileNotFoundError, match="WIFIDIFF_DATA_DIR"):
            fn()


def test_example_scenes():
    scenes = L.example_scenes()  # bundled in the package: a missing file is a broken install
    assert [s.name for s in scenes] == ["rms_0_0", "rms_0_13", "sim_s2026_i0", "sim_s2026_i1"]
    for s in scenes:
        assert s.shape == (256, 256)
        assert np.all(np.isnan(s.rss_dbm[s.buildings == 1]))
        assert np.all(np.isfinite(s.rss_dbm[s.buildings == 0]))
        assert s.source


# --- user files ---------------------------------------------------------------------------------


def test_buildings_npy_and_png(tmp_path):
    from PIL import Image

    b = np.zeros((16, 20), np.uint8)
    b[3:7, 4:9] = 1
    np.save(tmp_path / "b.npy", b)
    np.testing.assert_array_equal(L.load_buildings_file(tmp_path / "b.npy"), b)
    Image.fromarray(b * 255).save(tmp_path / "b.png")
    np.testing.assert_array_equal(L.load_buildings_file(str(tmp_path / "b.png")), b)


def test_buildings_bad_files(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really an image")
    (tmp_path / "b.txt").write_text("0 1\n1 0\n")
    np.save(tmp_path / "nonbinary.npy", np.full((8, 8), 3, np.uint8))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "trunc.npy").write_bytes(b"\x93NUMPY garbage")
    cases = [
        ("missing.npy", "does not exist"),
        ("junk.png", "could not read"),
        ("b.txt", "unsupported"),
        ("nonbinary.npy", "binary"),
        ("obj.npy", ""),
        ("trunc.npy", ""),
    ]
    for name, msg in cases:
        with pytest.raises(ValueError, match=msg or None):
            L.load_buildings_file(tmp_path / name)


def test_samples_csv(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("row,col,rss_dbm\n1,2,-50.5\n\n3,4,-60\n")
    np.testing.assert_array_equal(L.load_samples_csv(p), [[1, 2, -50.5], [3, 4, -60]])
    p.write_text("1,2,-50.5\n3,4,-60\n")
    np.testing.assert_array_equal(L.load_samples_csv(p), [[1, 2, -50.5], [3, 4, -60]])


@pytest.mark.parametrize(
    "content, msg",
    [
        ("x,y,z\n1,2,3\n", "header"),
        ("1,2\n", "3 columns"),
        ("1,2,-50,7\n", "3 columns"),
        ("1,two,-50\n", "not a number"),
        ("", "no samples"),
        ("row,col,rss_dbm\n", "no samples"),
        (b"\xff\xfe\x00\x81\x90binary", "not a text CSV"),
    ],
)
def test_samples_csv_bad(tmp_path, content, msg):
    p = tmp_path / "s.csv"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    with pytest.raises(ValueError, match=msg):
        L.load_samples_csv(p)


def test_samples_csv_missing(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        L.load_samples_csv(tmp_path / "nope.csv")
