"""Read RSS samples from a CSV: ``row,col,rss_dbm`` (pixels) or ``x,y,rss_dbm`` (map coordinates).

The header line names the columns and is required for ``x,y`` (without a header the columns are
``row,col,rss_dbm``). ``x,y`` are coordinates in the building raster's CRS and need a GeoTIFF
that has one; each point falls in the pixel that contains it. Column order is free, extra columns
(a sensor id, a timestamp) are ignored. Every failure is a ``ValueError`` naming the file, the
line and the fix.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .georef import GeoRef

PIXEL_COLUMNS = ("row", "col", "rss_dbm")
MAP_COLUMNS = ("x", "y", "rss_dbm")


def read_samples(path: str | Path, georef: GeoRef | None = None) -> np.ndarray:
    """``float64 [N, 3]`` of (row, col, rss_dbm). Grid checks (off the grid, on buildings,
    duplicates, range) are :func:`wifidiff_fast.data.validate.check_samples`' job."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"samples file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            records = [(n, r) for n, r in enumerate(csv.reader(fh), start=1) if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise ValueError(f"samples file {path} is not a UTF-8 text CSV") from None
    except (OSError, csv.Error) as exc:
        raise ValueError(f"could not read samples file {path}: {exc}") from None
    if not records:
        raise ValueError(f"samples file {path} holds no samples")
    first = [c.strip().lower() for c in records[0][1]]
    if all(_is_number(c) for c in first):
        names, body = list(PIXEL_COLUMNS), records
    else:
        names, body = first, records[1:]
    if set(PIXEL_COLUMNS) <= set(names):
        wanted = PIXEL_COLUMNS
    elif set(MAP_COLUMNS) <= set(names):
        wanted = MAP_COLUMNS
    else:
        raise ValueError(
            f"samples file {path}: the header must name the columns row,col,rss_dbm (pixels) "
            f"or x,y,rss_dbm (map coordinates in the raster's CRS); got {','.join(names)}"
        )
    if not body:
        raise ValueError(f"samples file {path} holds no samples (a header and nothing else)")
    idx = [names.index(c) for c in wanted]
    values = np.empty((len(body), 3), dtype=np.float64)
    for i, (lineno, record) in enumerate(body):
        if len(record) != len(names):
            raise ValueError(
                f"{path}:{lineno}: expected {len(names)} columns ({','.join(names)}), got {len(record)}"
            )
        try:
            values[i] = [float(record[j]) for j in idx]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: not a number in {record}") from None
    if wanted == MAP_COLUMNS:
        values = _map_to_pixels(values, georef, path)
    return values


def _map_to_pixels(values: np.ndarray, georef: GeoRef | None, path: Path) -> np.ndarray:
    if georef is None or georef.crs is None:
        raise ValueError(
            f"samples file {path} gives x,y map coordinates, but the building raster has no "
            "CRS to place them in. Use a GeoTIFF with a CRS, or give the samples as "
            "row,col,rss_dbm pixels"
        )
    if not np.all(np.isfinite(values[:, :2])):
        bad = int(np.argwhere(~np.isfinite(values[:, :2]))[0, 0])
        raise ValueError(
            f"samples file {path}: sample {bad} has a NaN/inf coordinate {values[bad, :2].tolist()}"
        )
    rows, cols = georef.rowcol(values[:, 0], values[:, 1])
    return np.stack([rows, cols, values[:, 2]], axis=1)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
