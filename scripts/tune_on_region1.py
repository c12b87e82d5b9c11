"""How the localiser and map settings were chosen: on BRAT region 1 windows only (the region the
prior is calibrated on), never on region 2. Prints, for one settings variant, the localisation
error, RMSE of kriging vs the physics map (no learned explanation), the MSE gain, the ±2σ coverage
and the σ scale that would give 0.90 / 0.93 / 0.95 coverage.

    python scripts/tune_on_region1.py '{"evidence_temperature": 16}' '{"n_starts": 4}'

Environment: TUNE_WINDOWS (default 8 windows), TUNE_NS (default "10,25,50"), MODEL_ERROR_DB (the
prior's error in the misfit and the evidence; default the shipped constant).

The first argument is a JSON of PhysicsSettings fields, the second of LocaliseParams fields. The
numbers quoted in physics_map.py and localise.py came from this loop at prior version 1 (commit
fd2bf0c's calibration); at the current calibration it gives the current numbers.
"""

import json
import os
import sys
import time

import numpy as np
import torch

import wifidiff_fast.pipeline.localise as localise_module
import wifidiff_fast.pipeline.physics_map as physics_map_module
from wifidiff_fast.data.protocol import draw_samples, map_seed
from wifidiff_fast.eval.baselines import kriging
from wifidiff_fast.eval.windows import site_windows
from wifidiff_fast.physics.prior import load_calibration
from wifidiff_fast.pipeline.localise import LocaliseParams
from wifidiff_fast.pipeline.physics_map import PhysicsSettings, physics_map

torch.set_num_threads(1)
if "MODEL_ERROR_DB" in os.environ:  # a module constant: both modules that read it get the value
    localise_module.MODEL_ERROR_DB = physics_map_module.MODEL_ERROR_DB = float(os.environ["MODEL_ERROR_DB"])
kw = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
lkw = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
settings = PhysicsSettings(localise=LocaliseParams(**lkw), **kw)
params = load_calibration()
scenes = site_windows(1, n=int(os.environ.get("TUNE_WINDOWS", 8)))
for n in [int(x) for x in os.environ.get("TUNE_NS", "10,25,50").split(",")]:
    errs, mse_k, mse_p, cover, z = [], [], [], [], []
    t0 = time.time()
    for i, sc in enumerate(scenes):
        s = draw_samples(sc.rss_dbm, sc.buildings, n, map_seed(0, i, n))
        pm = physics_map(sc.buildings, s, params, sc.freq_mhz, settings)
        found = np.array([h.rc() for h in pm.localisation.sites])
        errs += [
            float(np.min(np.linalg.norm(found - t, axis=1)))
            for t in sc.tx_rc
            if 0 <= t[0] < 256 and 0 <= t[1] < 256
        ]
        m = sc.buildings == 0
        err = pm.rss_dbm[m] - sc.rss_dbm[m]
        mse_k.append(np.mean((kriging(sc.buildings, s)[m] - sc.rss_dbm[m]) ** 2))
        mse_p.append(np.mean(err**2))
        cover.append(np.mean(np.abs(err) <= 2 * pm.sigma_db[m]))
        z.append(np.abs(err) / np.maximum(pm.sigma_db[m] / settings.sigma_scale, 1e-3))
    z = np.concatenate(z)
    print(
        f"N={n}: loc median {np.median(errs):.1f} p90 {np.percentile(errs, 90):.1f} px | kriging "
        f"{np.sqrt(np.mean(mse_k)):.2f} dB, physics {np.sqrt(np.mean(mse_p)):.2f} dB, gain "
        f"{np.mean(mse_k) / np.mean(mse_p):.2f}x | ±2σ coverage {np.mean(cover):.2f} | σ scale for "
        f"0.90/0.93/0.95: {[round(float(np.quantile(z, q)) / 2, 2) for q in (0.9, 0.93, 0.95)]} "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )
