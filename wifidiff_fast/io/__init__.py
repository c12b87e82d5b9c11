"""User files in and out: building rasters (PNG/NPY/GeoTIFF), sample CSVs, maps (NPY/GeoTIFF),
figures. Every writer is atomic (temporary file + rename)."""

from .atomic import atomic_path
from .buildings import BuildingRaster, read_buildings
from .figure import write_figure
from .georef import GeoRef
from .outputs import GEOTIFF_NODATA, write_geotiff, write_npy
from .samples import read_samples

__all__ = [
    "BuildingRaster",
    "GEOTIFF_NODATA",
    "GeoRef",
    "atomic_path",
    "read_buildings",
    "read_samples",
    "write_figure",
    "write_geotiff",
    "write_npy",
]
