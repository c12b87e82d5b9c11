"""Validation during training: the boost map on BRAT region 2, which training never reads.

Fixed crops (the evaluation crops at 1750 and 5750 MHz) and fixed samples (the evaluation
protocol, N = 50), so the curve is comparable across steps and runs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.loaders import brat_scenes
from ..data.protocol import draw_samples, map_seed, rasterise
from ..data.units import P_MAX_DBM, P_MIN_DBM, dbm_to_model
from ..pipeline.boost import rough_map

VAL_N = 50


class Validator:
    def __init__(self, device="cpu", data_dir=None, n: int = VAL_N, seed: int = 0):
        scenes = brat_scenes(2, bands_mhz=(1750, 5750), data_dir=data_dir)
        xs, bs, ss, ms = [], [], [], []
        for i, sc in enumerate(scenes):
            samples = draw_samples(sc.rss_dbm, sc.buildings, n, map_seed(seed, i, n))
            S, M = rasterise(samples, sc.shape)
            xs.append(torch.from_numpy(dbm_to_model(np.nan_to_num(sc.rss_dbm, nan=P_MIN_DBM))).float())
            bs.append(torch.from_numpy(sc.buildings).float())
            ss.append(S)
            ms.append(M)
        dev = torch.device(device)
        self.x0, self.B = torch.stack(xs).to(dev), torch.stack(bs).to(dev)
        self.S, self.M = torch.stack(ss).to(dev), torch.stack(ms).to(dev)

    @torch.no_grad()
    def boost_metrics(self, attunet: torch.nn.Module) -> dict:
        was_training = attunet.training
        attunet.eval()
        R = torch.cat(
            [
                rough_map(attunet, self.B[i : i + 4], self.S[i : i + 4], self.M[i : i + 4])
                for i in range(0, self.B.shape[0], 4)
            ]
        ).float()
        attunet.train(was_training)
        open_ = 1 - self.B
        y, yh = (self.x0 + 1) / 2, (R + 1) / 2
        se = ((yh - y) ** 2 * open_).sum((1, 2))
        nmse = (se / ((y**2) * open_).sum((1, 2))).mean()
        rmse_db = ((se / open_.sum((1, 2))).sqrt() * (P_MAX_DBM - P_MIN_DBM)).mean()
        return {"nmse": float(nmse), "rmse_db": float(rmse_db)}
