"""Write estimated maps: NPY (float32 dBm, NaN on buildings) and GeoTIFF (nodata on buildings).

Every writer goes through :func:`~wifidiff_fast.io.atomic.atomic_path`: a failed run leaves no
partial file behind.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .georef import GeoRef

# GeoTIFF nodata on buildings: a finite value far outside any RSS, because several GIS tools
# treat a NaN nodata inconsistently. NPY outputs keep NaN (the API's convention).
GEOTIFF_NODATA = -9999.0


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array, dtype=np.float32))
    return path


def write_geotiff(
    path: str | Path, rss_dbm: np.ndarray, georef: GeoRef | None, uncertainty_db: np.ndarray | None = None
) -> Path:
    """Band 1: RSS in dBm; band 2 (when given): 1σ uncertainty in dB. Buildings (NaN) become
    :data:`GEOTIFF_NODATA`. Without a georeference the file is a plain pixel-grid TIFF."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    path = Path(path)
    bands = [np.asarray(rss_dbm, dtype=np.float32)]
    names = ["rss_dbm"]
    if uncertainty_db is not None:
        bands.append(np.asarray(uncertainty_db, dtype=np.float32))
        names.append("uncertainty_db")
    h, w = bands[0].shape
    profile = dict(
        driver="GTiff",
        height=h,
        width=w,
        count=len(bands),
        dtype="float32",
        nodata=GEOTIFF_NODATA,
        compress="deflate",
    )
    if georef is not None:
        profile["transform"] = georef.affine
        if georef.crs is not None:
            profile["crs"] = georef.crs
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            for i, (band, name) in enumerate(zip(bands, names), start=1):
                dst.write(np.where(np.isfinite(band), band, GEOTIFF_NODATA).astype(np.float32), i)
                dst.set_band_description(i, name)
            dst.update_tags(units="dBm (band 1), dB (band 2)", nodata_means="building")
    return path
