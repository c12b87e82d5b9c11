"""Correction curves of the propagation prior: one smooth 1-D curve per geometric feature.

The scalar prior (:mod:`.prior`) fixes the *shape* of each effect: a straight line in
log-distance, a Gaussian-in-angle sector lobe, a soft-capped wall and building loss that decays
behind the last building. The curves let each effect take the shape the data says, and nothing
more: a site's power at a point gets

    C_k(q) = Σ_f φ_f(x_f(k, q))

with ``φ_f`` piecewise linear on fixed knots over one feature of the (site, point) geometry:

* ``log_distance``  log10 of the 3-D distance (px): the near-mast ring, the far fall-off;
* ``sector_deg``    angle off the nearest sector's boresight (0–60°): the real lobe shape;
* ``walls``         buildings entered on the ray;
* ``length_px``     building pixels crossed;
* ``exit_px``       distance behind the last building (diffraction filling the shadow in).

The model is additive by design. An interaction between features, or a feature of *where* the
point is, could learn one city's streets; a curve of one physical quantity cannot. Measured
before adopting it (``scripts/residual_transfer.py``, docs/RESULTS.md §0.00): fitted on region 1
and scored on region 2, boosted trees on these features went 3.14 → 3.00 / 2.85 / 2.77 / 2.66 dB
from lightly regularised to depth 1 (the additive case); in the other direction all gained alike.

The fit (:func:`fit_curves`) is linear least squares on the scalar prior's residual with the true
sites, points where one site dominates (the curve of that site then owns the residual), and a
second-difference penalty that keeps each curve smooth. Curves are stored as plain knot/value
lists in the calibration JSON.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .antenna import SECTOR_OFFSETS_DEG, wrap_angle

__all__ = ["CURVE_KNOTS", "curve_features", "curves_db", "fit_curves", "check_curves", "plot_curves"]

# Knots per feature (values beyond the ends are clamped to the end knots).
CURVE_KNOTS: dict[str, list[float]] = {
    "log_distance": [round(x, 3) for x in np.linspace(0.0, 2.8, 15).tolist()],
    "sector_deg": [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
    "walls": [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0],
    "length_px": [0.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0],
    "exit_px": [0.0, 5.0, 10.0, 20.0, 40.0, 60.0, 90.0, 130.0, 200.0],
}


def curve_features(geom, params, rot=0.0) -> dict[str, torch.Tensor]:
    """The curve inputs for every (site, point) of a :class:`~.prior.SiteGeometry` (``[T, P]`` each)."""
    h = params["height_px"] if isinstance(params, dict) else params.height_px
    out = {
        "log_distance": torch.log10(torch.sqrt(geom.dist_px**2 + torch.as_tensor(h) ** 2)),
        "walls": geom.walls.float(),
        "length_px": geom.length_px.float(),
        "exit_px": geom.exit_px.float(),
    }
    rot_t = torch.as_tensor(rot, dtype=torch.float32)
    rot_t = rot_t.reshape(-1, 1) if rot_t.dim() else rot_t
    off = torch.stack([wrap_angle(geom.azimuth - rot_t - math.radians(o)).abs() for o in SECTOR_OFFSETS_DEG])
    out["sector_deg"] = torch.rad2deg(off.min(0).values)
    return out


def _hat_weights(x: torch.Tensor, knots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Piecewise-linear interpolation of ``x`` on ``knots``: (left knot index, right-knot weight)."""
    x = x.clamp(float(knots[0]), float(knots[-1]))
    i = torch.searchsorted(knots, x.contiguous(), right=True).clamp(1, len(knots) - 1) - 1
    lo, hi = knots[i], knots[i + 1]
    return i, (x - lo) / (hi - lo)


def check_curves(curves) -> None:
    """Raise ``ValueError`` unless ``curves`` is a well-formed ``{"knots", "values"}`` block."""
    try:
        knots, values = curves["knots"], curves["values"]
        for name, k in knots.items():
            if name not in CURVE_KNOTS:
                raise ValueError(f"unknown curve feature {name!r} (known: {sorted(CURVE_KNOTS)})")
            v = values[name]
            if len(k) < 2 or len(k) != len(v) or any(b <= a for a, b in zip(k, k[1:])):
                raise ValueError(f"curve {name!r}: needs >= 2 increasing knots and one value per knot")
            if not all(math.isfinite(float(x)) for x in list(k) + list(v)):
                raise ValueError(f"curve {name!r} holds a non-finite number")
    except (KeyError, TypeError, AttributeError):
        raise ValueError(
            "the prior's correction curves must be {'knots': {feature: [...]}, 'values': {feature: [...]}}; "
            "re-run `python -m wifidiff_fast.physics.calibrate`"
        ) from None


def curves_db(geom, params, curves: dict, rot=0.0, sector: bool = True) -> torch.Tensor:
    """``Σ_f φ_f(x_f)`` in dB for every (site, point): ``[T, P]`` (``sector=False``: an omni site,
    which has no boresight, skips the sector curve)."""
    feats = curve_features(geom, params, rot)
    total = torch.zeros_like(geom.dist_px)
    for name, knots in curves["knots"].items():
        if name == "sector_deg" and not sector:
            continue
        k = torch.tensor(knots, dtype=torch.float32)
        v = torch.tensor(curves["values"][name], dtype=torch.float32)
        i, t = _hat_weights(feats[name], k)
        total = total + v[i] * (1 - t) + v[i + 1] * t
    return total


def _design(feats: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Hat-basis design matrix ``[P, Σ knots]`` and each feature's column span."""
    cols, spans, start = [], [], 0
    for name, knots in CURVE_KNOTS.items():
        k = torch.tensor(knots, dtype=torch.float32)
        i, t = _hat_weights(torch.as_tensor(feats[name], dtype=torch.float32), k)
        block = np.zeros((len(t), len(knots)))
        rows = np.arange(len(t))
        block[rows, i.numpy()] += 1 - t.numpy()
        block[rows, i.numpy() + 1] += t.numpy()
        cols.append(block)
        spans.append((name, start, start + len(knots)))
        start += len(knots)
    return np.hstack(cols), spans


def fit_curves(
    feats: dict[str, np.ndarray], residual_db: np.ndarray, smooth: float = 3.0, ridge: float = 1e-4
) -> dict:
    """Least-squares curves for ``residual ≈ Σ_f φ_f(x_f)`` (one row per point, the dominant site's
    features), with a second-difference smoothness penalty ``smooth`` per curve and a small ridge.

    Each curve is centred (mean 0 over the fit points) so the level stays with the scalars and
    the per-map offset; returns the JSON-able ``{"knots": …, "values": …}``.
    """
    X, spans = _design(feats)
    n = len(residual_db)
    A = X.T @ X / n
    b = X.T @ residual_db / n
    pen = np.eye(X.shape[1]) * ridge
    for _, lo, hi in spans:
        m = hi - lo
        if m >= 3:
            D = np.zeros((m - 2, m))
            for r in range(m - 2):
                D[r, r : r + 3] = (1.0, -2.0, 1.0)
            pen[lo:hi, lo:hi] += smooth * D.T @ D / m
    theta = np.linalg.solve(A + pen, b)
    values = {}
    for name, lo, hi in spans:
        v = theta[lo:hi]
        v = v - float((X[:, lo:hi] @ v).mean())  # centred over the fit points
        values[name] = [round(float(x), 4) for x in v]
    return {"knots": {k: list(v) for k, v in CURVE_KNOTS.items()}, "values": values}


CURVE_LABELS = {
    "log_distance": "3-D distance to the site (px, log scale)",
    "sector_deg": "angle off the nearest sector boresight (°)",
    "walls": "buildings entered on the ray",
    "length_px": "building pixels crossed",
    "exit_px": "distance behind the last building (px)",
}


def plot_curves(curves_by_name: dict[str, dict], path) -> None:
    """One panel per feature, one line per calibration (e.g. ``{"region 1": c1, "region 2": c2}``):
    curves that agree across regions are physics, not one city's streets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_KNOTS), figsize=(4 * len(CURVE_KNOTS), 3.4))
    for ax, name in zip(axes, CURVE_KNOTS):
        for label, curves in curves_by_name.items():
            if curves is None or name not in curves["values"]:
                continue
            k = np.asarray(curves["knots"][name], dtype=float)
            x = 10**k if name == "log_distance" else k
            ax.plot(x, curves["values"][name], marker="o", ms=3, label=label)
        if name == "log_distance":
            ax.set_xscale("log")
        ax.axhline(0.0, color="0.7", lw=0.8)
        ax.set_xlabel(CURVE_LABELS[name])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("correction (dB)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Correction curves of the propagation prior (version 3)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
