"""Contact sheet of simulated maps: RSS in dBm (shared colour bar), buildings black, transmitters marked.

    python -m wifidiff_fast.data.contact_sheet --out sheet.png --n 16 --size 256 --seed 0

Transmitters inside the map are drawn as red crosses; those outside as red triangles on the border,
at the point of the border nearest to them.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from .simulator import SimConfig, simulate_batch


def contact_sheet(
    out: str, n: int = 16, size: int = 256, seed: int = 0, dpi: int = 60, scenario: str = "mixed"
) -> None:
    """Simulate ``n`` maps and save them as a PNG grid at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    sb = simulate_batch(n, size, seed, config=SimConfig(scenario=scenario))
    rss = np.where(sb.buildings.numpy() == 1, np.nan, sb.rss_dbm.numpy())
    vmin, vmax = np.nanpercentile(rss, 1), np.nanmax(rss)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols + 0.9, 2.75 * rows), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("black")
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        im = ax.imshow(rss[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        for r, c in sb.tx_rc[i, : int(sb.n_tx[i])].numpy():
            rc, cc = np.clip(r, 0, size - 1), np.clip(c, 0, size - 1)
            inside = (rc, cc) == (r, c)
            ax.plot(cc, rc, "x" if inside else "^", color="red", ms=7 if inside else 5, mew=2, clip_on=False)
        kind = "region" if bool(sb.is_region[i]) else ("mast" if bool(sb.is_mast[i]) else "AP")
        ax.set_title(f"{kind} {float(sb.freq_mhz[i]):.0f} MHz {float(sb.pixel_m[i]):.1f} m/px", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="RSS [dBm] (buildings black)")
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dpi", type=int, default=60)
    ap.add_argument("--scenario", default="mixed", choices=["mixed", "region", "random"])
    a = ap.parse_args(argv)
    contact_sheet(a.out, a.n, a.size, a.seed, a.dpi, a.scenario)


if __name__ == "__main__":
    main()
