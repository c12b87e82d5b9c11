"""Does the search lose, or the prior? For region-1 windows at one N, the localiser's own set
score (GP misfit + offset prior, one common offset: ``known_sites`` for the true sites, the best
set's ``score`` for the search) of the true sites against the found ones, and the same misfit with
a free power per site (Gauss–Newton, a 3 dB prior per site). RESULTS.md §0.00 quotes its output (prior v2, N = 50):
every found set fitted the samples better than the true sites did.

    N=50 python scripts/diagnose_localisation.py
    git show d09f5f0:wifidiff_fast/physics/calibration.json > /tmp/prior_v2.json
    CALIBRATION=/tmp/prior_v2.json N=50 python scripts/diagnose_localisation.py   # as quoted

Environment: N (default 50), WINDOWS (default 8), SITE_SIGMA_DB (default 3), CALIBRATION (a
calibration JSON; default the shipped one).
"""

import os

import numpy as np
import torch

from wifidiff_fast.data.protocol import draw_samples, map_seed
from wifidiff_fast.eval.crossregion import _sites_in_margin
from wifidiff_fast.eval.windows import site_windows
from wifidiff_fast.physics.prior import load_calibration
from wifidiff_fast.pipeline.localise import (
    MODEL_ERROR_DB,
    LocaliseParams,
    _Scorer,
    known_sites,
    localise,
    residual_precision,
)

torch.set_num_threads(1)


def per_site_misfit(
    site_db: np.ndarray, p: np.ndarray, prec: np.ndarray, site_sigma_db: float, offset_sigma_db: float
):
    """GP misfit ``rᵀR⁻¹r`` plus the priors, with a common offset and per-site offsets fitted by
    Gauss–Newton on the power sum (``site_db [k, N]``)."""
    k = site_db.shape[0]
    prior = np.diag([(MODEL_ERROR_DB / offset_sigma_db) ** 2] + [(MODEL_ERROR_DB / site_sigma_db) ** 2] * k)
    a = np.zeros(k + 1)
    for _ in range(10):
        lin = 10 ** ((site_db + a[0] + a[1:, None]) / 10)
        total = lin.sum(0)
        J = np.vstack([np.ones(site_db.shape[1]), lin / total]).T
        r = p - 10 * np.log10(total)
        a = a + np.linalg.solve(J.T @ prec @ J + prior, J.T @ prec @ r - prior @ a)
    r = p - 10 * np.log10((10 ** ((site_db + a[0] + a[1:, None]) / 10)).sum(0))
    return float(r @ prec @ r + a @ prior @ a)


def main() -> None:
    n = int(os.environ.get("N", 50))
    site_sigma = float(os.environ.get("SITE_SIGMA_DB", 3.0))
    params = load_calibration(os.environ.get("CALIBRATION"))
    cfg = LocaliseParams()
    for i, sc in enumerate(site_windows(1, n=int(os.environ.get("WINDOWS", 8)))):
        s = draw_samples(sc.rss_dbm, sc.buildings, n, map_seed(0, i, n))
        rc = torch.as_tensor(s[:, :2], dtype=torch.float32)
        scorer = _Scorer(sc.buildings, rc, params, sc.freq_mhz, cfg.step_px)
        prec = residual_precision(rc, params).double().numpy()
        true = _sites_in_margin(sc, cfg.margin)
        best = localise(sc.buildings, s, params, sc.freq_mhz, cfg).sets[0]
        found = np.array([h.rc() for h in best.sites])
        common = {
            "true": known_sites(sc.buildings, s, true, params, sc.freq_mhz, cfg).sets[0].score,
            "found": best.score,
        }
        row = []
        for name, sites in (("true", true), ("found", found)):
            site_db = scorer.site_db(torch.as_tensor(sites, dtype=torch.float32)).double().numpy()
            free = per_site_misfit(site_db, s[:, 2], prec, site_sigma, cfg.offset_sigma_db)
            row.append(f"{name} [{len(sites)} sites] common offset {common[name]:.0f}, per-site {free:.0f}")
        print(f"{sc.name} N={n}: " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
