"""Scene building (pure numpy, testable without Sionna): building sources and heights, the extruded
mesh, transmitter sites on masts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import BRAT_TRAIN_REGION, RTConfig


def building_heights(
    buildings: np.ndarray, rng: np.random.Generator, height_range: tuple[float, float]
) -> np.ndarray:
    """One random height per 8-connected building, 0 on the ground. float32 [H, W]."""
    from scipy import ndimage

    labels, count = ndimage.label(buildings.astype(bool), structure=np.ones((3, 3), dtype=bool))
    per_building = rng.uniform(height_range[0], height_range[1], size=count + 1)
    per_building[0] = 0.0
    # 0.5 m steps: fewer distinct vertex heights, and a wall never degenerates to a sliver.
    per_building = np.round(per_building * 2.0) / 2.0
    return per_building[labels].astype(np.float32)


def extrude_mesh(heights: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the height raster: a roof quad per building pixel, a wall quad per pixel
    edge where the height drops. Vertices sit on the pixel-corner grid and are shared, so the mesh
    is watertight above ground and Sionna finds its roof/wall wedges for diffraction (coplanar
    neighbours are not silhouette edges, so the pixel tessellation adds no spurious wedges).
    Normals point outwards. Coordinates: x east = (col − W/2)·pixel, y north = (H/2 − row)·pixel,
    z up; pixel (r, c) covers x ∈ [c, c+1), y ∈ (H/2 − r − 1, H/2 − r] in pixel units.

    Returns ``vertices float32 [n, 3]`` and ``faces uint32 [m, 3]`` (empty when no building).
    """
    h = np.asarray(heights, dtype=np.float32)
    H, W = h.shape
    rr, cc = np.nonzero(h > 0)
    z = h[rr, cc]
    quads = []  # each [k, 4, 3] of (grid row, grid col, z), counter-clockwise seen from outside
    quads.append(
        np.stack(
            [
                np.stack([rr + 1, cc, z], -1),
                np.stack([rr + 1, cc + 1, z], -1),
                np.stack([rr, cc + 1, z], -1),
                np.stack([rr, cc, z], -1),
            ],
            1,
        )
    )
    padded = np.pad(h, 1)
    # (d_row, d_col, edge start, edge end): start→end × z gives the outward normal.
    walls = (
        (-1, 0, (0, 1), (0, 0)),  # north edge, row r, normal +y
        (1, 0, (1, 0), (1, 1)),  # south edge, row r+1, normal −y
        (0, -1, (0, 0), (1, 0)),  # west edge, col c, normal −x
        (0, 1, (1, 1), (0, 1)),  # east edge, col c+1, normal +x
    )
    for d_r, d_c, (a_r, a_c), (b_r, b_c) in walls:
        hn = padded[rr + 1 + d_r, cc + 1 + d_c]
        m = hn < z
        r0, c0, lo, hi = rr[m], cc[m], hn[m], z[m]
        quads.append(
            np.stack(
                [
                    np.stack([r0 + a_r, c0 + a_c, lo], -1),
                    np.stack([r0 + b_r, c0 + b_c, lo], -1),
                    np.stack([r0 + b_r, c0 + b_c, hi], -1),
                    np.stack([r0 + a_r, c0 + a_c, hi], -1),
                ],
                1,
            )
        )
    q = np.concatenate(quads, 0).astype(np.float64)  # [k, 4, 3]
    if len(q) == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
    keys, inverse = np.unique(q.reshape(-1, 3), axis=0, return_inverse=True)
    idx = inverse.reshape(-1, 4)
    faces = np.concatenate([idx[:, [0, 1, 2]], idx[:, [0, 2, 3]]], 0).astype(np.uint32)
    verts = np.stack([(keys[:, 1] - W / 2.0) * pixel_m, (H / 2.0 - keys[:, 0]) * pixel_m, keys[:, 2]], -1)
    return verts.astype(np.float32), faces


def pixel_to_xy(rc: np.ndarray, shape: tuple[int, int], pixel_m: float) -> np.ndarray:
    """Pixel (row, col) — centres at +0.5 — of a grid of ``shape`` → world (x, y) [m]."""
    rc = np.asarray(rc, dtype=np.float64).reshape(-1, 2)
    H, W = shape
    return np.stack([(rc[:, 1] + 0.5 - W / 2.0) * pixel_m, (H / 2.0 - rc[:, 0] - 0.5) * pixel_m], -1)


_BRAT_CACHE: dict[str, np.ndarray] = {}


def _brat_footprints(data_dir: str | Path | None = None) -> np.ndarray:
    key = str(data_dir)
    if key not in _BRAT_CACHE:
        from ..data.loaders import load_brat_region

        _BRAT_CACHE[key] = load_brat_region(BRAT_TRAIN_REGION, data_dir).buildings.astype(np.uint8)
    return _BRAT_CACHE[key]


def sample_buildings(
    source: str,
    extent: int,
    rng: np.random.Generator,
    seed: int,
    index: int,
    data_dir: str | Path | None = None,
) -> tuple[np.ndarray, str]:
    """Building raster of ``extent × extent`` (map + margins) and its source tag."""
    if source == "mixed":
        source = "procedural" if rng.random() < 0.5 else "brat"
    if source == "procedural":
        import torch

        from ..data.layouts import random_layouts

        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))
        layout = random_layouts(1, extent, generator=gen, device="cpu")
        return np.asarray(layout[0].cpu().numpy() > 0, dtype=np.uint8), "procedural"
    if source == "brat":
        region = _brat_footprints(data_dir)
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        region = np.rot90(region, k)
        if flip:
            region = region[:, ::-1]
        H, W = region.shape
        if H < extent or W < extent:
            raise ValueError(f"BRAT region {BRAT_TRAIN_REGION} ({H}x{W}) is smaller than {extent}x{extent}")
        r, c = int(rng.integers(H - extent + 1)), int(rng.integers(W - extent + 1))
        return np.ascontiguousarray(region[r : r + extent, c : c + extent]).astype(np.uint8), "brat1"
    raise ValueError(f"unknown source {source!r}")


def sample_sites(buildings_ext: np.ndarray, cfg: RTConfig, rng: np.random.Generator) -> np.ndarray:
    """Site pixels (row, col) in the extended grid, on the ground; the first one inside the map."""
    m, S = cfg.margin, cfg.size
    n = int(rng.integers(cfg.n_sites[0], cfg.n_sites[1] + 1))
    free = buildings_ext == 0
    inside = np.zeros_like(free)
    inside[m : m + S, m : m + S] = True
    # Keep a 2-px clearance from the scene border.
    pool_all = free.copy()
    pool_all[:2] = pool_all[-2:] = False
    pool_all[:, :2] = pool_all[:, -2:] = False
    pool_in = np.argwhere(pool_all & inside)
    pool_out = np.argwhere(pool_all & ~inside)
    if len(pool_in) == 0:
        raise ValueError("no ground pixel inside the map for a transmitter")
    sites = []
    for i in range(n):
        outside = i > 0 and len(pool_out) > 0 and rng.random() < cfg.outside_site_prob
        pool = pool_out if outside else pool_in
        sites.append(pool[int(rng.integers(len(pool)))])
    return np.asarray(sites, dtype=np.int64)
