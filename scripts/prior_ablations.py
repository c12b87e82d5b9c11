"""Prior variants measured and rejected (RESULTS §0.1): counting only the buildings near the
receiver (``roof_fraction``) and rotating the sectors. Fit on region 1, check on region 2, true
sites, no samples, RMSE after one offset.

    python scripts/prior_ablations.py

The quoted numbers were measured at prior version 1 (no shadow recovery); this script runs the
current version, so expect slightly different values.
"""

import math
from dataclasses import replace

import numpy as np
import torch

from wifidiff_fast.data.loaders import load_brat_region
from wifidiff_fast.physics.calibrate import fit, region_points, score
from wifidiff_fast.physics.prior import (
    PropagationParams,
    load_calibration,
    power_sum_db,
    site_geometry,
    site_power_db,
)

torch.set_num_threads(2)
r1, r2 = load_brat_region(1), load_brat_region(2)
for fraction in (1.0, 0.5, 0.25):
    p = fit(r1, replace(PropagationParams(), roof_fraction=fraction), steps=300, log=lambda *a: None)
    print(
        f"roof_fraction {fraction}: region 2 at 5750 MHz {score(r2, p, 15000)[5750]['offset_rmse_db']:.2f} dB"
    )
params = load_calibration()
for region in (r1, r2):
    rc, rss = region_points(region, 8000, 0)
    geom = site_geometry(region.buildings, region.tx_rc, rc, receiver_fraction=params.roof_fraction)
    out = []
    for rot in range(0, 120, 10):
        with torch.no_grad():
            pred = power_sum_db(site_power_db(geom, params, 5750.0, rot=math.radians(rot))).numpy()
        out.append((rot, round(float(np.std(pred - rss[4])), 2)))
    print(f"region {region.index}, sector rotation (deg, RMSE after offset):", out)
