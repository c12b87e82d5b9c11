"""Input checks shared by every public entry point (baselines, estimator, CLIs).

Each function either returns a clean array or raises ``TypeError``/``ValueError`` with a message
that names the problem and the fix — never a traceback from deep inside numpy or torch.

Duplicate sample pixels are **averaged** (in dBm): a sensor reporting twice, or two sensors in the
same cell, is one measurement of that cell. The policy lives here and only here.

RSS values outside the checkpoint's range (``rss_range``, −130…−10 dBm for the shipped one) are
**rejected**, never clipped silently: a value like +60 dBm is almost always a unit mistake (dB
gain, mW, a sign) and clipping would hide it inside a plausible map. Callers who really measured
beyond the range clip explicitly (``np.clip``, or the CLI's ``--clip-rss``, which warns).
"""

from __future__ import annotations

import numpy as np

MIN_GRID = 4


def _as_numeric_array(value, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}")
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def check_buildings(buildings) -> np.ndarray:
    """Return the building mask as ``uint8 [H, W]`` (1 = building) or raise.

    Accepts bool or numeric arrays whose values are exactly 0 or 1.
    """
    b = _as_numeric_array(buildings, "buildings")
    if b.ndim != 2:
        raise ValueError(f"buildings must be a 2-D [H, W] mask, got shape {tuple(b.shape)}")
    if min(b.shape) < MIN_GRID:
        raise ValueError(f"buildings must be at least {MIN_GRID}x{MIN_GRID}, got {b.shape[0]}x{b.shape[1]}")
    if b.dtype.kind == "f" and not np.all(np.isfinite(b)):
        raise ValueError("buildings contains NaN or inf; it must be a 0/1 mask")
    values = np.unique(b)
    if not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(str(v) for v in values[:6])
        raise ValueError(
            f"buildings must be binary (0 = open, 1 = building); found values {shown}. "
            "Threshold your layout first, e.g. (layout > 0).astype('uint8')."
        )
    b = b.astype(np.uint8)
    if b.all():
        raise ValueError("buildings covers the whole grid: there is no open pixel to estimate")
    return b


def check_samples(samples, buildings: np.ndarray, rss_range: tuple[float, float] | None = None) -> np.ndarray:
    """Return samples as ``float64 [N, 3]`` of (row, col, rss_dbm), duplicates averaged, or raise.

    ``buildings`` must already have passed :func:`check_buildings`. ``rss_range`` (dBm, inclusive):
    the range the model represents; values outside it are rejected (see the module notes).
    """
    s = _as_numeric_array(samples, "samples").astype(np.float64)
    if s.ndim != 2 or s.shape[1] != 3:
        raise ValueError(
            f"samples must be an [N, 3] array of (row, col, rss_dbm), got shape {tuple(s.shape)}"
        )
    if s.shape[0] == 0:
        raise ValueError("samples is empty: at least one measurement (N >= 1) is needed")
    if not np.all(np.isfinite(s)):
        bad = int(np.argwhere(~np.isfinite(s))[0, 0])
        raise ValueError(f"samples row {bad} contains NaN or inf: {s[bad].tolist()}")
    rc = s[:, :2]
    if not np.all(rc == np.round(rc)):
        bad = int(np.argwhere(rc != np.round(rc))[0, 0])
        raise ValueError(f"sample row/col must be integer pixel indices; row {bad} is {rc[bad].tolist()}")
    h, w = buildings.shape
    rows, cols = rc[:, 0].astype(np.int64), rc[:, 1].astype(np.int64)
    outside = (rows < 0) | (rows >= h) | (cols < 0) | (cols >= w)
    if outside.any():
        bad = int(np.argmax(outside))
        raise ValueError(f"sample {bad} at (row={rows[bad]}, col={cols[bad]}) is outside the {h}x{w} grid")
    on_building = buildings[rows, cols] == 1
    if on_building.any():
        bad = int(np.argmax(on_building))
        raise ValueError(
            f"sample {bad} at (row={rows[bad]}, col={cols[bad]}) lies on a building pixel; "
            "buildings have no RSS, move or drop that sample"
        )
    if np.abs(s[:, 2]).max() > 400:
        raise ValueError("sample RSS values must be in dBm (|rss| <= 400); got values far outside that")
    if rss_range is not None:
        lo, hi = float(rss_range[0]), float(rss_range[1])
        outside_range = (s[:, 2] < lo) | (s[:, 2] > hi)
        if outside_range.any():
            bad = int(np.argmax(outside_range))
            raise ValueError(
                f"{int(outside_range.sum())} sample(s) lie outside the checkpoint's RSS range "
                f"{lo:g}..{hi:g} dBm, e.g. sample {bad} = {s[bad, 2]:g} dBm. Check the units (dBm, not "
                f"dB gain or mW); to keep such readings, clip them to the range yourself "
                f"(np.clip(rss, {lo:g}, {hi:g}); the CLI's --clip-rss)"
            )
    linear = rows * w + cols
    uniq, inverse = np.unique(linear, return_inverse=True)
    if uniq.size == linear.size:
        return np.stack([rows, cols, s[:, 2]], axis=1).astype(np.float64)
    rss = np.bincount(inverse, weights=s[:, 2]) / np.bincount(inverse)
    return np.stack([uniq // w, uniq % w, rss], axis=1).astype(np.float64)


def clip_rss(samples: np.ndarray, rss_range: tuple[float, float]) -> tuple[np.ndarray, int]:
    """Samples with the RSS column clipped to ``rss_range``, and how many values were clipped (the
    explicit opt-in that :func:`check_samples` points to)."""
    s = np.array(samples, dtype=np.float64)
    lo, hi = float(rss_range[0]), float(rss_range[1])
    finite = np.isfinite(s[:, 2])
    n = int(((s[finite, 2] < lo) | (s[finite, 2] > hi)).sum())
    s[finite, 2] = np.clip(s[finite, 2], lo, hi)
    return s, n


def check_count(n, name: str = "N") -> int:
    """A positive integer count (sample count, candidates, ...)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return int(n)
