"""Helpers of the runtime tests: the pipeline tests' tiny checkpoint (random weights) and maps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pipeline"))
from pipecases import write_tiny_checkpoint  # noqa: E402,F401


def layout(seed: int, H: int = 48, W: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = np.zeros((H, W), np.uint8)
    for _ in range(4):
        r, c = rng.integers(0, H - 8), rng.integers(0, W - 8)
        b[r : r + rng.integers(3, 8), c : c + rng.integers(3, 8)] = 1
    return b


def samples(b: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(b == 0)
    pick = rng.choice(len(rows), n, replace=False)
    return np.stack([rows[pick], cols[pick], rng.uniform(-100, -40, n)], axis=1)
