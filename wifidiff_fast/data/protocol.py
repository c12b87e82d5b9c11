"""The sparse-sample protocol of the paper (§V) and the rasterised condition (DESIGN §1).

N ∈ {10, 25, 50, 100, 150, 200} sample pixels drawn uniformly, without replacement, over the
non-building pixels; the draw is seeded per (base seed, map index, N) so every method of an
evaluation sees exactly the same samples.
"""

from __future__ import annotations

import numpy as np
import torch

from .units import P_MAX_DBM, P_MIN_DBM, dbm_to_model
from .validate import check_buildings, check_count

PAPER_N = (10, 25, 50, 100, 150, 200)


def map_seed(base_seed: int, map_index: int, n: int) -> np.random.Generator:
    """The generator used for map ``map_index`` at sample count ``n``."""
    return np.random.default_rng(np.random.SeedSequence([int(base_seed), int(map_index), int(n)]))


def draw_samples(rss_dbm: np.ndarray, buildings, n: int, rng: np.random.Generator | int) -> np.ndarray:
    """Draw ``n`` samples ``[n, 3]`` of (row, col, rss_dbm) uniformly over open pixels."""
    b = check_buildings(buildings)
    n = check_count(n, "n")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    free = np.flatnonzero(b.reshape(-1) == 0)
    if n > free.size:
        raise ValueError(f"asked for {n} samples but the map has only {free.size} open pixels")
    pick = np.sort(rng.choice(free, size=n, replace=False))
    rows, cols = np.divmod(pick, b.shape[1])
    values = np.asarray(rss_dbm, dtype=np.float64)[rows, cols]
    if not np.all(np.isfinite(values)):
        raise ValueError("the ground-truth map has NaN/inf at open pixels; fix the data set")
    return np.stack([rows, cols, values], axis=1)


def rasterise(
    samples: np.ndarray, shape: tuple[int, int], p_min: float = P_MIN_DBM, p_max: float = P_MAX_DBM
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples → (S, M) rasters ``float32 [H, W]``: S = model-space value at sample pixels, M = 1 there.

    ``samples`` must already be validated (integer pixels, no duplicates).
    """
    h, w = shape
    S = torch.zeros(h, w, dtype=torch.float32)
    M = torch.zeros(h, w, dtype=torch.float32)
    rows = torch.as_tensor(samples[:, 0], dtype=torch.long)
    cols = torch.as_tensor(samples[:, 1], dtype=torch.long)
    S[rows, cols] = torch.as_tensor(dbm_to_model(samples[:, 2], p_min, p_max), dtype=torch.float32)
    M[rows, cols] = 1.0
    return S, M
