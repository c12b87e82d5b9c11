"""Experiment: can a small CNN on physics channels correct the propagation prior across regions?

Trains on BRAT region 1 (true sites, all bands, random 128² crops, 8 symmetries), scores on
region 2 (true sites, no samples): RMSE of the prior alone vs prior + correction.

    python scripts/prior_correction_experiment.py --minutes 8 --out docs/results/prior_correction.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn

from wifidiff_fast.data.loaders import load_brat_region
from wifidiff_fast.physics.prior import load_calibration, power_sum_db, site_geometry, site_power_db


def channels(region, params):
    """[5 bands, 6, H, W] inputs and [5, H, W] targets (truth − prior), NaN on buildings → 0."""
    b = region.buildings
    H, W = b.shape
    rr, cc = np.mgrid[:H, :W]
    pts = np.stack([rr.ravel(), cc.ravel()], 1).astype(np.float32)
    geom = site_geometry(b, region.tx_rc, pts, 1.0, params.roof_fraction)
    xs, ys = [], []
    for j, f in enumerate(region.freqs_mhz.tolist()):
        with torch.no_grad():
            sp = site_power_db(geom, params, float(f))
        prior = power_sum_db(sp).numpy()
        dom = sp.argmax(0).numpy()
        idx = np.arange(len(dom))
        d = geom.dist_px.numpy()[dom, idx]
        length = geom.length_px.numpy()[dom, idx]
        walls = geom.walls.numpy()[dom, idx]
        x = np.stack(
            [
                b.ravel().astype(np.float32),
                (prior + 60) / 20,
                np.log10(d + 1) / 2.5,
                (length == 0).astype(np.float32),
                np.minimum(length, 60) / 20,
                np.minimum(walls, 10) / 5,
            ]
        )
        y = region.rss_dbm[j].ravel() - prior
        y = np.where(np.isfinite(y), y, 0.0)
        xs.append(x.reshape(6, H, W))
        ys.append(y.reshape(H, W))
    return torch.tensor(np.stack(xs), dtype=torch.float32), torch.tensor(np.stack(ys), dtype=torch.float32)


class Net(nn.Module):
    def __init__(self, c=32):
        super().__init__()
        layers, cin = [], 6
        for dil in (1, 2, 4, 8, 1):
            layers += [nn.Conv2d(cin, c, 3, padding=dil, dilation=dil), nn.GELU()]
            cin = c
        layers += [nn.Conv2d(c, 1, 1)]
        self.f = nn.Sequential(*layers)

    def forward(self, x):
        return self.f(x)[:, 0] * 5.0


def d4(x, k):
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=8)
    ap.add_argument("--out", default="docs/results/prior_correction.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    params = load_calibration()
    r1, r2 = load_brat_region(1), load_brat_region(2)
    x1, y1 = channels(r1, params)
    x2, y2 = channels(r2, params)
    m1 = (torch.tensor(r1.buildings) == 0).float()
    m2 = (torch.tensor(r2.buildings) == 0).float()
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    t0, step, S = time.time(), 0, 128
    H, W = x1.shape[-2:]
    g = torch.Generator().manual_seed(0)
    while time.time() - t0 < args.minutes * 60:
        xb, yb, mb = [], [], []
        for _ in range(8):
            j = int(torch.randint(0, 5, (1,), generator=g))
            r = int(torch.randint(0, H - S + 1, (1,), generator=g))
            c = int(torch.randint(0, W - S + 1, (1,), generator=g))
            k = int(torch.randint(0, 8, (1,), generator=g))
            xb.append(d4(x1[j, :, r : r + S, c : c + S], k))
            yb.append(d4(y1[j, r : r + S, c : c + S], k))
            mb.append(d4(m1[r : r + S, c : c + S], k))
        xb, yb, mb = torch.stack(xb), torch.stack(yb), torch.stack(mb)
        loss = (((net(xb) - yb) ** 2) * mb).sum() / mb.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.2f} ({time.time() - t0:.0f} s)", flush=True)
    net.eval()
    res = {"steps": step}
    with torch.no_grad():
        for name, x, y, m in (("region1_train", x1, y1, m1), ("region2_unseen", x2, y2, m2)):
            out = {}
            for j, f in enumerate((1750, 2750, 3750, 4750, 5750)):
                corr = net(x[j : j + 1])[0]
                e0 = y[j][m > 0]
                e1 = (y[j] - corr)[m > 0]
                out[f] = {
                    "prior_rmse_db": float(e0.pow(2).mean().sqrt()),
                    "corrected_rmse_db": float(e1.pow(2).mean().sqrt()),
                    "prior_std_db": float(e0.std()),
                    "corrected_std_db": float(e1.std()),
                }
            res[name] = out
            print(
                name,
                {f: (round(v["prior_std_db"], 2), round(v["corrected_std_db"], 2)) for f, v in out.items()},
            )
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=2)
    torch.save(net.state_dict(), "/tmp/prior_correction.pt")


if __name__ == "__main__":
    main()
