"""The picture of one estimate: samples, map with transmitter hypotheses, uncertainty.

Three panels sharing axes in pixels (row down, column right) or, with a north-up georeference,
in map units (x right, y up). Every colour has a colour bar: the measured samples (dBm), the
estimate (dBm, on the samples' scale so the two read alike) and the 1σ uncertainty (dB).
Buildings are gray. Transmitter hypotheses: filled red triangles are the sites that explain the
samples (``n_sites``), hollow ones the other hypotheses; sites may stand outside the grid, and the
axes widen to show the explaining sites (by at most half the grid per side).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .georef import GeoRef


def _to_axes(rows, cols, georef: GeoRef | None):
    """Pixel centres (row, col) → plot coordinates."""
    rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
    if georef is None or not georef.north_up:
        return cols, rows
    a, _, c, _, e, f = georef.transform
    return c + a * (cols + 0.5), f + e * (rows + 0.5)


def write_figure(
    path: str | Path,
    buildings: np.ndarray,
    samples: np.ndarray,
    rss_dbm: np.ndarray,
    uncertainty_db: np.ndarray | None = None,
    transmitters: np.ndarray | None = None,
    n_sites: int = 0,
    georef: GeoRef | None = None,
    title: str | None = None,
) -> Path:
    """Write the figure to ``path`` (PNG, or any suffix matplotlib knows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = buildings.shape
    metric = georef is not None and georef.north_up
    extent = georef.extent(h, w) if metric else (-0.5, w - 0.5, h - 0.5, -0.5)
    unit = georef.units if metric else "px"
    xlabel, ylabel = ("x", "y") if metric else ("column", "row")
    open_vals = rss_dbm[np.isfinite(rss_dbm)]
    lo = float(min(np.percentile(open_vals, 1) if open_vals.size else -120, samples[:, 2].min()))
    hi = float(max(np.percentile(open_vals, 99.5) if open_vals.size else -20, samples[:, 2].max()))
    has_unc = uncertainty_db is not None and np.isfinite(uncertainty_db).any()
    n_panels = 3 if has_unc else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 4.6), squeeze=False)
    axes = axes[0]
    gray = np.ma.masked_equal(buildings, 0)
    sx, sy = _to_axes(samples[:, 0], samples[:, 1], georef)
    # the view: the grid, widened to the explaining sites (at most half the grid per side)
    xs, ys = [extent[0], extent[1]], [extent[2], extent[3]]
    if transmitters is not None and n_sites:
        kx, ky = _to_axes(transmitters[:n_sites, 0], transmitters[:n_sites, 1], georef)
        xs += list(kx)
        ys += list(ky)
    span_x, span_y = abs(extent[1] - extent[0]), abs(extent[3] - extent[2])
    lo_x, hi_x = min(extent[:2]), max(extent[:2])
    lo_y, hi_y = min(extent[2:]), max(extent[2:])
    view_x = (
        max(min(xs), lo_x - span_x / 2) - 0.03 * span_x,
        min(max(xs), hi_x + span_x / 2) + 0.03 * span_x,
    )
    view_y = (
        max(min(ys), lo_y - span_y / 2) - 0.03 * span_y,
        min(max(ys), hi_y + span_y / 2) + 0.03 * span_y,
    )

    ax = axes[0]
    ax.imshow(np.zeros_like(buildings), cmap="gray", vmin=-1, vmax=0, extent=extent)  # white ground
    ax.imshow(gray, cmap="gray", vmin=0, vmax=2.5, extent=extent)
    dots = ax.scatter(
        sx, sy, c=samples[:, 2], cmap="viridis", vmin=lo, vmax=hi, s=18, edgecolors="k", linewidths=0.4
    )
    fig.colorbar(dots, ax=ax, fraction=0.046, pad=0.03, label="measured RSS (dBm)")
    ax.set_title(f"buildings and {len(samples)} samples")

    ax = axes[1]
    im = ax.imshow(np.ma.masked_invalid(rss_dbm), cmap="viridis", vmin=lo, vmax=hi, extent=extent)
    ax.imshow(gray, cmap="gray", vmin=0, vmax=2.5, extent=extent)
    ax.scatter(sx, sy, s=5, c="w", edgecolors="k", linewidths=0.3, label="samples")
    if transmitters is not None and len(transmitters):
        tx, ty = _to_axes(transmitters[:, 0], transmitters[:, 1], georef)
        k = int(n_sites)
        if k < len(tx):
            ax.scatter(
                tx[k:],
                ty[k:],
                marker="^",
                s=40,
                facecolors="none",
                edgecolors="r",
                linewidths=0.8,
                label="other hypotheses",
            )
        if k:
            ax.scatter(
                tx[:k],
                ty[:k],
                marker="^",
                s=70,
                c="r",
                edgecolors="k",
                linewidths=0.6,
                label=f"{k} transmitter site(s)",
            )
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7, frameon=False)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="estimated RSS (dBm)")
    ax.set_title("estimate (buildings gray)")

    if has_unc:
        ax = axes[2]
        im = ax.imshow(np.ma.masked_invalid(uncertainty_db), cmap="magma", extent=extent)
        ax.imshow(gray, cmap="gray", vmin=0, vmax=2.5, extent=extent)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="uncertainty, 1σ (dB)")
        ax.set_title("uncertainty")

    for ax in axes:
        ax.set_xlabel(f"{xlabel} ({unit})")
        ax.set_ylabel(f"{ylabel} ({unit})")
        ax.set_xlim(*view_x)
        ax.set_ylim(*(view_y if metric else view_y[::-1]))  # pixel axes: row 0 at the top
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return path
