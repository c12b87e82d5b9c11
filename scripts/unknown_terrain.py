"""How should a ray count the terrain outside the window? The true sites' prior on site-holding
BRAT windows (no samples, one offset per map), with the outside counted as open against the
window's own statistics (``raycast.unknown_rates``). Sites outside a window are the usual case
(the judge's windows hold at least one site; the others may lie outside).

    python scripts/unknown_terrain.py                     # region 1 windows, region-1 prior
    REGION=2 python scripts/unknown_terrain.py            # region 2 windows, same prior

Environment: REGION (default 1), WINDOWS (default 8), CALIBRATION (default the shipped one).
Prints, per band and overall, the RMSE after the offset and the mean offset (truth − prior).
"""

import os

import numpy as np
import torch

from wifidiff_fast.eval.crossregion import _sites_in_margin
from wifidiff_fast.eval.windows import site_windows
from wifidiff_fast.physics.prior import load_calibration, power_sum_db, site_geometry, site_power_db

torch.set_num_threads(1)


def prior_db(scene, params, unknown) -> np.ndarray:
    H, W = scene.shape
    rr, cc = np.mgrid[:H, :W]
    pts = torch.tensor(np.column_stack([rr.ravel(), cc.ravel()]), dtype=torch.float32)
    sites = torch.tensor(_sites_in_margin(scene, 0.5), dtype=torch.float32)
    geom = site_geometry(scene.buildings, sites, pts, 0.5, params.roof_fraction, unknown=unknown)
    return power_sum_db(site_power_db(geom, params, scene.freq_mhz)).reshape(H, W).numpy()


def main() -> None:
    params = load_calibration(os.environ.get("CALIBRATION"))
    scenes = site_windows(
        int(os.environ.get("REGION", 1)), n=int(os.environ.get("WINDOWS", 8)), bands_mhz=None
    )
    stats = {}  # (mode, band) -> [(mse, offset)]
    for sc in scenes:
        open_px = sc.buildings == 0
        for mode, unknown in (("open", None), ("expected", "raster")):
            r = sc.rss_dbm[open_px] - prior_db(sc, params, unknown)[open_px]
            stats.setdefault((mode, sc.freq_mhz), []).append((np.mean((r - r.mean()) ** 2), r.mean()))
    for mode in ("open", "expected"):
        rows = []
        for band in sorted({b for _, b in stats}):
            v = np.array(stats[(mode, band)])
            rows.append(f"{band:.0f} MHz {np.sqrt(v[:, 0].mean()):.2f} dB (offset {v[:, 1].mean():+.2f})")
        v = np.concatenate([np.array(stats[k]) for k in stats if k[0] == mode])
        print(
            f"{mode:9s} all {np.sqrt(v[:, 0].mean()):.2f} dB (offset {v[:, 1].mean():+.2f}) | "
            + " | ".join(rows)
        )


if __name__ == "__main__":
    main()
