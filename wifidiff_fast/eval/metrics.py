"""Map-quality metrics (DESIGN §5; paper conventions).

Every function takes ``(pred, target, mask=None)``: two dBm maps ``[H, W]`` (numpy arrays or torch
tensors) and an optional boolean mask of the pixels to score (True = score, e.g.
``buildings == 0``).

* ``mask=None`` scores every pixel where the **target** is finite (building pixels are NaN in the
  ground truth, so they drop out). A prediction that is NaN/inf at a scored pixel is an error
  (``ValueError``), never silently skipped: a method must not improve its score by abstaining.
  (The same holds with an explicit mask; a non-finite *target* at a scored pixel is an error too.)
* ``mse``, ``rmse``, ``nmse``, ``psnr`` and ``ssim`` work on the ``[0, 1]`` scale
  ``y = (x + 1)/2`` of :func:`wifidiff_fast.data.units.dbm_to_unit` (dBm clipped to the package
  range ``P_MIN_DBM…P_MAX_DBM``, then mapped linearly):
  ``NMSE = Σ(ŷ − y)² / Σy²``, ``PSNR = 20·log10(1 / RMSE)`` (``inf`` for a perfect map).
* ``rmse_db`` is the RMSE in dB directly on the dBm values (no clipping).
* ``ssim``: scikit-image ``structural_similarity`` (7×7 uniform window, ``data_range=1``) on
  the ``[0, 1]`` scale. Unscored pixels of *both* maps are first filled with the target's mean
  over the scored pixels (so building pixels look like flat, average terrain to the window and
  the prediction's values there cannot matter); the full SSIM map is then averaged over the
  scored pixels that lie at least 3 px (half a window) from the grid edge — the same border crop
  scikit-image applies to its own mean, so with every pixel scored the value equals
  ``structural_similarity(...)`` exactly. Grids smaller than 7 px use the largest odd window
  that fits (at least 3); if no scored pixel lies in the interior, all scored pixels are used.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.units import dbm_to_unit

__all__ = ["mse", "rmse", "nmse", "psnr", "ssim", "rmse_db", "all_metrics", "METRICS"]


def _to_numpy(a, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    arr = np.asarray(a)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [H, W] map, got shape {tuple(arr.shape)}")
    return arr.astype(np.float64)


def _prepare(pred, target, mask):
    """Return (pred_dbm, target_dbm, mask) as float64, float64, bool, all checked."""
    p = _to_numpy(pred, "pred")
    t = _to_numpy(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} must have the same shape")
    if mask is None:
        m = np.isfinite(t)
    else:
        m = _to_numpy(mask, "mask") if not isinstance(mask, np.ndarray) or mask.dtype != bool else mask
        if m.shape != t.shape:
            raise ValueError(f"mask {m.shape} must have the shape of target {t.shape}")
        if m.dtype != bool:
            if not np.all(np.isin(m, (0, 1))):
                raise ValueError("mask must be boolean (or 0/1): True/1 = score this pixel")
            m = m.astype(bool)
    if not m.any():
        raise ValueError("no pixel to score: the mask (or the target's finite pixels) is empty")
    if not np.all(np.isfinite(t[m])):
        raise ValueError(f"target has {int((~np.isfinite(t[m])).sum())} NaN/inf value(s) at scored pixels")
    bad = ~np.isfinite(p[m])
    if bad.any():
        raise ValueError(
            f"pred has {int(bad.sum())} NaN/inf value(s) at scored (non-building) pixels; "
            "a prediction must cover every scored pixel"
        )
    return p, t, m


def _sq_err_unit(pred, target, mask):
    p, t, m = _prepare(pred, target, mask)
    yp = dbm_to_unit(p[m])
    yt = dbm_to_unit(t[m])
    return (yp - yt) ** 2, yt


def mse(pred, target, mask=None) -> float:
    """Mean squared error on the [0, 1] scale over scored pixels."""
    se, _ = _sq_err_unit(pred, target, mask)
    return float(se.mean())


def rmse(pred, target, mask=None) -> float:
    """Root mean squared error on the [0, 1] scale over scored pixels."""
    return math.sqrt(mse(pred, target, mask))


def nmse(pred, target, mask=None) -> float:
    """``Σ(ŷ − y)² / Σy²`` on the [0, 1] scale over scored pixels."""
    se, yt = _sq_err_unit(pred, target, mask)
    denom = float((yt**2).sum())
    if denom == 0.0:
        raise ValueError("NMSE is undefined: the target is 0 on the [0, 1] scale at every scored pixel")
    return float(se.sum()) / denom


def psnr(pred, target, mask=None) -> float:
    """``20·log10(1 / RMSE)`` in dB (peak 1 on the [0, 1] scale); ``inf`` when RMSE is 0."""
    r = rmse(pred, target, mask)
    return math.inf if r == 0.0 else 20.0 * math.log10(1.0 / r)


def rmse_db(pred, target, mask=None) -> float:
    """RMSE in dB, directly on the dBm values over scored pixels."""
    p, t, m = _prepare(pred, target, mask)
    return float(np.sqrt(np.mean((p[m] - t[m]) ** 2)))


def ssim(pred, target, mask=None) -> float:
    """Structural similarity on the [0, 1] scale (see the module docstring for the masking rule)."""
    from skimage.metrics import structural_similarity

    p, t, m = _prepare(pred, target, mask)
    h, w = t.shape
    win = min(7, min(h, w) if min(h, w) % 2 == 1 else min(h, w) - 1)
    if win < 3:
        raise ValueError(f"SSIM needs a grid of at least 3x3, got {h}x{w}")
    yt = np.zeros_like(t)
    yp = np.zeros_like(p)
    yt[m] = dbm_to_unit(t[m])
    yp[m] = dbm_to_unit(p[m])
    fill = float(yt[m].mean())
    yt[~m] = fill
    yp[~m] = fill
    _, smap = structural_similarity(yt, yp, data_range=1.0, win_size=win, full=True)
    pad = (win - 1) // 2
    interior = np.zeros_like(m)
    interior[pad : h - pad, pad : w - pad] = True
    score = m & interior
    if not score.any():
        score = m
    return float(smap[score].mean())


METRICS = {"mse": mse, "rmse": rmse, "nmse": nmse, "psnr": psnr, "ssim": ssim, "rmse_db": rmse_db}


def all_metrics(pred, target, mask=None) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one map (inputs are checked once per metric)."""
    return {name: fn(pred, target, mask) for name, fn in METRICS.items()}
