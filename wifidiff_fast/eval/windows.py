"""Judge-like evaluation windows: 256² crops of a BRAT region that each contain a site.

The held-out evaluation the project answers to uses 256² windows of unseen BRAT regions, each
containing at least one mast site (other sites may lie outside). :func:`site_windows` draws such
windows from a development region with a fixed seed: origins uniform over the region, kept when a
site lies inside (at least ``inset`` px from the edge), in every requested band. The same origins
serve every band, so band-to-band comparisons see the same geometry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.loaders import CROP, load_brat_region, region_crops
from ..data.scene import Scene

__all__ = ["window_origins", "site_windows"]


def window_origins(
    shape: tuple[int, int], tx_rc: np.ndarray, n: int, seed: int = 0, size: int = CROP, inset: int = 0
) -> list[tuple[int, int]]:
    """``n`` distinct seeded window corners whose window holds at least one site."""
    H, W = shape
    if H < size or W < size:
        raise ValueError(f"region {H}x{W} is smaller than the {size}x{size} window")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 9091]))
    out: list[tuple[int, int]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(f"could not find {n} windows holding a site (found {len(out)})")
        r, c = int(rng.integers(0, H - size + 1)), int(rng.integers(0, W - size + 1))
        rel = np.asarray(tx_rc) - np.array([r, c])
        inside = ((rel >= inset) & (rel < size - inset)).all(axis=1)
        if inside.any() and (r, c) not in out:
            out.append((r, c))
    return out


def site_windows(
    index: int,
    n: int = 8,
    bands_mhz: tuple[int, ...] | None = (5750,),
    seed: int = 0,
    size: int = CROP,
    data_dir: str | Path | None = None,
) -> list[Scene]:
    """``n`` site-holding windows of BRAT region ``index`` in each requested band (all if None)."""
    region = load_brat_region(index, data_dir)
    origins = window_origins(region.buildings.shape, region.tx_rc, n, seed, size)
    return region_crops(region, origins, bands_mhz, size, tag="w")
