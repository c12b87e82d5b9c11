"""wifidiff_fast.io: building rasters (PNG/NPY/GeoTIFF), sample CSVs, atomic NPY/GeoTIFF writes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from wifidiff_fast.io import (
    GEOTIFF_NODATA,
    GeoRef,
    atomic_path,
    read_buildings,
    read_samples,
    write_geotiff,
    write_npy,
)

UTM32N = CRS.from_epsg(32632)
TRANSFORM = Affine(2.0, 0.0, 500_000.0, 0.0, -2.0, 5_000_000.0)


def _layout(h=40, w=56):
    b = np.zeros((h, w), np.uint8)
    b[5:15, 10:30] = 1
    return b


def write_tif(path, data, crs=UTM32N, transform=TRANSFORM, dtype="uint8", nodata=None, count=1):
    profile = dict(driver="GTiff", height=data.shape[-2], width=data.shape[-1], count=count, dtype=dtype)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        if count == 1:
            dst.write(data.astype(dtype), 1)
        else:
            dst.write(np.stack([data] * count).astype(dtype))


def test_png_npy_and_geotiff_give_the_same_mask(tmp_path):
    b = _layout()
    Image.fromarray(b * 255).save(tmp_path / "b.png")
    np.save(tmp_path / "b.npy", b)
    heights = b * 12.5  # a building-height raster: non-zero = building
    write_tif(tmp_path / "b.tif", heights, dtype="float32")
    for name in ("b.png", "b.npy", "b.tif"):
        r = read_buildings(tmp_path / name)
        assert r.mask.dtype == np.uint8 and np.array_equal(r.mask, b), name
    geo = read_buildings(tmp_path / "b.tif").georef
    assert geo.crs is not None and CRS.from_wkt(geo.crs) == UTM32N
    assert geo.transform == (2.0, 0.0, 500_000.0, 0.0, -2.0, 5_000_000.0)
    assert read_buildings(tmp_path / "b.png").georef is None


def test_pixel_size_gives_a_local_metric_grid(tmp_path):
    b = _layout()
    Image.fromarray(b * 255).save(tmp_path / "b.png")
    g = read_buildings(tmp_path / "b.png", pixel_size_m=2.5).georef
    assert g.crs is None and g.north_up and g.extent(40, 56) == (0.0, 140.0, 0.0, 100.0)
    write_tif(tmp_path / "b.tif", b)
    with pytest.raises(ValueError, match="drop --pixel-size"):
        read_buildings(tmp_path / "b.tif", pixel_size_m=2.0)


def test_samples_in_pixels_and_in_map_coordinates(tmp_path):
    b = _layout()
    write_tif(tmp_path / "b.tif", b)
    geo = read_buildings(tmp_path / "b.tif").georef
    (tmp_path / "px.csv").write_text("row,col,rss_dbm\n20,3,-60\n39,55,-70.5\n")
    (tmp_path / "noheader.csv").write_text("20,3,-60\n39,55,-70.5\n")
    # pixel (20, 3) has its top-left corner at x = 500006, y = 4999960; any point inside maps to it
    (tmp_path / "xy.csv").write_text("sensor,y,x,rss_dbm\na,4999959.1,500007.9,-60\nb,4999921,500111,-70.5\n")
    want = np.array([[20, 3, -60], [39, 55, -70.5]])
    assert np.array_equal(read_samples(tmp_path / "px.csv"), want)
    assert np.array_equal(read_samples(tmp_path / "noheader.csv"), want)
    assert np.array_equal(read_samples(tmp_path / "xy.csv", geo), want)


def test_geotiff_round_trip_keeps_georeference_and_marks_buildings_nodata(tmp_path):
    b = _layout()
    write_tif(tmp_path / "b.tif", b)
    geo = read_buildings(tmp_path / "b.tif").georef
    rss = np.where(b == 1, np.nan, -70.0 + np.arange(b.size).reshape(b.shape) * 1e-3).astype(np.float32)
    unc = np.where(b == 1, np.nan, 2.0).astype(np.float32)
    write_geotiff(tmp_path / "out.tif", rss, geo, unc)
    with rasterio.open(tmp_path / "out.tif") as src:
        assert src.crs == UTM32N and tuple(src.transform)[:6] == geo.transform
        assert src.count == 2 and src.nodata == GEOTIFF_NODATA
        assert src.descriptions == ("rss_dbm", "uncertainty_db")
        band = src.read(1)
        assert np.all(band[b == 1] == GEOTIFF_NODATA)
        assert np.array_equal(band[b == 0], rss[b == 0])
        assert np.array_equal(src.read(2)[b == 0], unc[b == 0])
    assert list(tmp_path.glob(".*tmp*")) == []


def test_write_npy_is_float32_and_atomic(tmp_path):
    path = tmp_path / "m.npy"
    write_npy(path, np.ones((3, 4)))
    assert np.load(path).dtype == np.float32
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "never.npy") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the writer died")
    assert not (tmp_path / "never.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npy"]


def test_georef_rowcol_is_the_inverse_of_the_pixel_centre():
    g = GeoRef((2.0, 0.0, 100.0, 0.0, -2.0, 500.0))
    rows, cols = np.array([0, 7, 12]), np.array([0, 3, 40])
    r, c = g.rowcol(100.0 + 2.0 * (cols + 0.5), 500.0 - 2.0 * (rows + 0.5))
    assert np.array_equal(r, rows) and np.array_equal(c, cols)
