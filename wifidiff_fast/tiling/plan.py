"""Where the tiles of a region go, and how much each one counts at every pixel.

Tiles of ``tile × tile`` pixels step by ``tile − overlap``; the last row and column of tiles are
aligned to the region's far edges, so every pixel is covered and no tile hangs over the edge. Each
tile's blend weight ramps linearly from 0 at an edge it shares with a neighbour to 1 at
``overlap`` pixels in (edges on the region's border keep weight 1): in every overlap band two
ramps cross and sum to one, so the blended map is a convex combination with no step at the tile
borders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    index: int
    r0: int
    c0: int
    h: int
    w: int

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r0 + self.h), slice(self.c0, self.c0 + self.w)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def plan_tiles(shape: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering ``shape``; a side shorter than ``tile`` is one tile of that side."""
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 32:
        raise ValueError(f"tile must be an integer >= 32 pixels (the networks' smallest grid), got {tile!r}")
    if (
        isinstance(overlap, bool)
        or not isinstance(overlap, (int, np.integer))
        or not 0 <= overlap <= tile // 2
    ):
        raise ValueError(f"overlap must be an integer in 0..tile/2 = {tile // 2}, got {overlap!r}")
    H, W = shape
    stride = tile - overlap
    th, tw = min(tile, H), min(tile, W)
    tiles = []
    for r0 in _starts(H, tile, stride):
        for c0 in _starts(W, tile, stride):
            tiles.append(Tile(len(tiles), r0, c0, th, tw))
    return tiles


def _ramp(n: int, ramp_lo: int, ramp_hi: int) -> np.ndarray:
    """1-D weight of length n: rises over ``ramp_lo`` pixels, falls over ``ramp_hi`` pixels."""
    w = np.ones(n, dtype=np.float64)
    if ramp_lo:
        w[:ramp_lo] = np.minimum(w[:ramp_lo], (np.arange(ramp_lo) + 0.5) / ramp_lo)
    if ramp_hi:
        w[n - ramp_hi :] = np.minimum(w[n - ramp_hi :], (ramp_hi - np.arange(ramp_hi) - 0.5) / ramp_hi)
    return w


def blend_weight(tile: Tile, shape: tuple[int, int], tiles: list[Tile]) -> np.ndarray:
    """``float64 [h, w]``: this tile's weight; ramps only towards neighbours that overlap it."""
    H, W = shape

    def ramps(start: int, size: int, length: int, others: list[int]) -> tuple[int, int]:
        # overlap with the previous / next tile along this axis (0 at the region's border)
        lo = max((o + size - start for o in others if o < start < o + size), default=0)
        hi = max((start + size - o for o in others if start < o < start + size), default=0)
        return lo, hi

    rows = sorted({t.r0 for t in tiles})
    cols = sorted({t.c0 for t in tiles})
    rl, rh = ramps(tile.r0, tile.h, H, rows)
    cl, ch = ramps(tile.c0, tile.w, W, cols)
    return np.outer(_ramp(tile.h, rl, rh), _ramp(tile.w, cl, ch))
