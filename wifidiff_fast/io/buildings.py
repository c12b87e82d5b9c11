"""Read a building raster from PNG/other images, NPY or GeoTIFF into a checked 0/1 mask.

| format | building pixels | georeference |
| --- | --- | --- |
| ``.npy`` | exactly 1 (0 = open); anything else is rejected | none (``--pixel-size``) |
| ``.png`` ``.jpg`` ``.bmp`` ``.gif`` | bright: gray level > 127 | none (``--pixel-size``) |
| ``.tif`` ``.tiff`` (GeoTIFF, one band) | non-zero (a height raster works); nodata = open | CRS + geotransform |

Images with transparent pixels are rejected: what a transparent pixel means (building or open)
is not knowable. Every failure is a ``ValueError`` naming the file and the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.validate import check_buildings
from .georef import GeoRef

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
GEOTIFF_SUFFIXES = (".tif", ".tiff")
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # what GDAL reports for a TIFF without geotransform


@dataclass
class BuildingRaster:
    mask: np.ndarray  # uint8 [H, W], 1 = building
    georef: GeoRef | None  # None for plain images and arrays
    path: Path


def read_buildings(path: str | Path, pixel_size_m: float | None = None) -> BuildingRaster:
    """The building mask of ``path`` and its georeference.

    ``pixel_size_m`` gives a plain image or array a local metric grid (no CRS); a GeoTIFF brings
    its own and must not be given one.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"buildings file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        mask, georef = _read_npy(path), None
    elif suffix in IMAGE_SUFFIXES:
        mask, georef = _read_image(path), None
    elif suffix in GEOTIFF_SUFFIXES:
        mask, georef = _read_geotiff(path)
        if pixel_size_m is not None and georef is not None:
            raise ValueError(f"{path} carries its own geotransform; drop --pixel-size")
    else:
        raise ValueError(
            f"buildings file {path}: unsupported type {suffix!r} (use .npy, .png or a GeoTIFF .tif)"
        )
    try:
        mask = check_buildings(mask)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"buildings file {path}: {exc}") from None
    if pixel_size_m is not None:
        georef = GeoRef.from_pixel_size(pixel_size_m, mask.shape[0])
    return BuildingRaster(mask, georef, path)


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # truncated, pickled, not an .npy at all
        raise ValueError(f"could not read buildings file {path} as a numpy .npy array: {exc}") from None


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, inside the try
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
            if has_alpha:
                alpha = np.asarray(img.convert("RGBA"))[..., 3]
                if (alpha < 255).any():
                    raise ValueError(
                        f"buildings image {path} has {int((alpha < 255).sum())} transparent pixels; a "
                        "transparent pixel is neither building nor open. Flatten the image onto a "
                        "background (buildings bright, open dark) and save it without alpha"
                    )
            gray = np.asarray(img.convert("L"))
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"could not read buildings image {path}: {exc}") from None
    return (gray > 127).astype(np.uint8)


def _read_geotiff(path: Path) -> tuple[np.ndarray, GeoRef | None]:
    """The mask and the georeference (``None`` for a TIFF with neither CRS nor geotransform)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.count != 1:
                    raise ValueError(
                        f"GeoTIFF {path} has {src.count} bands; a building raster has one "
                        "(1 or any non-zero value = building)"
                    )
                band = src.read(1, masked=True)
                transform = tuple(float(v) for v in tuple(src.transform)[:6])
                crs = src.crs.to_wkt() if src.crs is not None else None
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"could not read GeoTIFF {path}: {exc}") from None
    data = np.ma.filled(band.astype(np.float64), 0.0)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"GeoTIFF {path} holds NaN/inf outside its nodata pixels; set a nodata value")
    mask = (data != 0).astype(np.uint8)
    if crs is None and transform == IDENTITY:
        return mask, None
    return mask, GeoRef(transform, crs)  # type: ignore[arg-type]
