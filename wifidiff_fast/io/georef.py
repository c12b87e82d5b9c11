"""Where a raster sits on the ground: its CRS and affine geotransform (rasterio's conventions).

The estimator works in pixels. A :class:`GeoRef` only maps pixels to coordinates and back, so
inputs in map coordinates can be read and outputs can be written georeferenced and drawn in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GeoRef:
    """``transform``: affine ``(a, b, c, d, e, f)`` with ``x = a·col + b·row + c`` and
    ``y = d·col + e·row + f`` at a pixel's top-left corner (rasterio/``affine`` order).
    ``crs``: the coordinate reference system as WKT, or ``None`` when the raster has none."""

    transform: tuple[float, float, float, float, float, float]
    crs: str | None = None

    @classmethod
    def from_pixel_size(cls, pixel_size_m: float, height: int) -> GeoRef:
        """A local north-up metric grid without CRS: x east from the left edge, y north from the
        bottom edge, ``pixel_size_m`` metres per pixel."""
        if not np.isfinite(pixel_size_m) or pixel_size_m <= 0:
            raise ValueError(f"pixel size must be a positive number of metres, got {pixel_size_m}")
        p = float(pixel_size_m)
        return cls((p, 0.0, 0.0, 0.0, -p, p * height), None)

    @property
    def affine(self):
        from affine import Affine

        return Affine(*self.transform)

    @property
    def north_up(self) -> bool:
        a, b, _, d, e, _ = self.transform
        return b == 0 and d == 0 and a > 0 and e < 0

    @property
    def units(self) -> str:
        """The coordinate unit for axis labels: the CRS's linear unit, degrees, or metres."""
        if self.crs is None:
            return "m"
        from rasterio.crs import CRS

        crs = CRS.from_wkt(self.crs)
        if crs.is_geographic:
            return "°"
        unit = (crs.linear_units or "m").lower()
        return {"metre": "m", "meter": "m", "metres": "m", "meters": "m"}.get(unit, unit)

    def rowcol(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (row, col) pixel holding each (x, y) point (floor of the inverse transform)."""
        a, b, c, d, e, f = self.transform
        det = a * e - b * d
        if det == 0:
            raise ValueError(
                f"the geotransform {self.transform} is singular: it maps no coordinates to pixels"
            )
        dx = np.asarray(x, dtype=np.float64) - c
        dy = np.asarray(y, dtype=np.float64) - f
        col = (e * dx - b * dy) / det
        row = (a * dy - d * dx) / det
        return np.floor(row), np.floor(col)

    def extent(self, height: int, width: int) -> tuple[float, float, float, float]:
        """``(left, right, bottom, top)`` of a north-up grid, for ``matplotlib.imshow(extent=...)``."""
        a, _, c, _, e, f = self.transform
        return c, c + a * width, f + e * height, f
