"""Median RSS around sites at 10 / 20 / 50 px: BRAT regions 1–2 vs the simulator's drawn and
prior masts (5750 MHz, 6 region-scenario maps, seed 3). RESULTS §0.1.

    python scripts/sim_falloff.py
"""

import numpy as np
import torch

from wifidiff_fast.data.loaders import load_brat_region
from wifidiff_fast.data.simulator import SimConfig, simulate_batch

torch.set_num_threads(1)
bins = [(8, 12), (18, 22), (45, 55)]


def prof(rss, b, txs):
    H, W = rss.shape
    rr, cc = np.mgrid[:H, :W]
    out = {k: [] for k in bins}
    for t in txs:
        if not (0 <= t[0] < H and 0 <= t[1] < W):
            continue
        d = np.hypot(rr - t[0], cc - t[1])
        for lo, hi in bins:
            m = (d >= lo) & (d < hi) & (b == 0) & np.isfinite(rss)
            out[(lo, hi)].append(np.median(rss[m]))
    return out


def summ(out):
    v = {k: np.mean(x) for k, x in out.items()}
    return {f"{k[0]}-{k[1]}": round(float(x), 1) for k, x in v.items()}, round(
        float(v[(8, 12)] - v[(45, 55)]), 1
    )


acc = {k: [] for k in bins}
for reg in (1, 2):
    R = load_brat_region(reg)
    o = prof(R.rss_dbm[4], R.buildings, R.tx_rc)
    for k in bins:
        acc[k] += o[k]
print("BRAT 5750", summ(acc))
for model in ("drawn", "prior"):
    sb = simulate_batch(
        6, 256, seed=3, config=SimConfig(scenario="region", freq_mhz=5750.0, mast_model=model, shadowing=True)
    )
    acc = {k: [] for k in bins}
    for i in range(6):
        o = prof(sb.rss_dbm[i].numpy(), sb.buildings[i].numpy(), sb.tx_rc[i].numpy())
        for k in bins:
            acc[k] += o[k]
    print("sim", model, summ(acc))
