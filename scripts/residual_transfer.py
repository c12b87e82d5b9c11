"""Which model of the prior's residual transfers to an unseen region? Per-pixel gradient-boosted
trees on the dominant site's geometry (log-distance, angle off the sector boresight, walls,
building length, distance behind the last building), fitted on one region's windows (all bands)
and scored on the other's (5750 MHz), RMSE after one offset per window. RESULTS.md §0.00 quotes
it: only the additive (depth-1) and strongly regularised models transfer — the reason prior
version 3 is five 1-D curves.

Needs scikit-learn, which the package does not depend on (``pip install scikit-learn``).

    python scripts/residual_transfer.py
"""

import math

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

from wifidiff_fast.eval.crossregion import _sites_in_margin
from wifidiff_fast.eval.windows import site_windows
from wifidiff_fast.physics.curves import CURVE_KNOTS, curve_features
from wifidiff_fast.physics.prior import (
    PropagationParams,
    load_calibration,
    power_sum_db,
    site_geometry,
    site_power_db,
)

torch.set_num_threads(2)
# The scalar (version 2) priors of each region: the residual the curves were built to explain.
CALIBRATIONS = {1: "wifidiff_fast/physics/calibration.json", 2: "docs/results/calibration_region2_v3.json"}
MODELS = {
    "lightly regularised (31 leaves, 300 rounds)": dict(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=200
    ),
    "depth 3": dict(max_iter=60, learning_rate=0.1, max_depth=3, min_samples_leaf=2000),
    "depth 2": dict(max_iter=100, learning_rate=0.1, max_depth=2, min_samples_leaf=2000),
    "depth 1 (additive)": dict(max_iter=200, learning_rate=0.1, max_depth=1, min_samples_leaf=2000),
}


def scalars(region: int) -> PropagationParams:
    p = load_calibration(CALIBRATIONS[region])
    return PropagationParams.from_dict({**p.to_dict(), "curves": None, "version": 2})


def features(sc, params, n_px, rng):
    """The dominant site's curve features (:func:`~wifidiff_fast.physics.curves.curve_features`,
    the same inputs prior version 3 uses) plus log frequency ``[P, 6]``, and the residual ``[P]``
    (window mean removed) at open pixels."""
    tx = _sites_in_margin(sc, 0.5).astype(np.float32)
    W = sc.shape[1]
    idx = np.flatnonzero((sc.buildings == 0).ravel())
    idx = rng.choice(idx, min(n_px, len(idx)), replace=False)
    pts = np.stack([idx // W, idx % W], -1).astype(np.float32)
    g = site_geometry(sc.buildings, tx, pts, 1.0, params.roof_fraction)
    with torch.no_grad():
        site_db = site_power_db(g, params, sc.freq_mhz)
        total = power_sum_db(site_db).numpy()
        feats = curve_features(g, params)
    k = site_db.argmax(0).numpy()
    cols = np.arange(len(idx))
    X = np.stack(
        [feats[name].numpy()[k, cols] for name in CURVE_KNOTS] + [np.full(len(idx), math.log10(sc.freq_mhz))],
        -1,
    )
    y = sc.rss_dbm.ravel()[idx] - total
    return X, y - y.mean()


def data(region, params, bands):
    rng = np.random.default_rng(0)
    rows = [features(sc, params, 6000, rng) for sc in site_windows(region, n=8, bands_mhz=bands)]
    groups = np.concatenate([np.full(len(y), j) for j, (_, y) in enumerate(rows)])
    return np.concatenate([X for X, _ in rows]), np.concatenate([y for _, y in rows]), groups


def main() -> None:
    for fit, score in ((1, 2), (2, 1)):
        params = scalars(fit)
        X, y, _ = data(fit, params, None)
        Xt, yt, gt = data(score, params, [5750])
        before = np.sqrt(np.mean(yt**2))
        for name, kw in MODELS.items():
            e = yt - HistGradientBoostingRegressor(**kw).fit(X, y).predict(Xt)
            e = np.concatenate([e[gt == j] - e[gt == j].mean() for j in np.unique(gt)])
            print(
                f"fit {fit} → score {score}, {name}: {before:.2f} → {np.sqrt(np.mean(e**2)):.2f} dB",
                flush=True,
            )


if __name__ == "__main__":
    main()
