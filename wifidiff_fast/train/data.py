"""Training batches on the training device, mixed from three sources.

* ``brat``: random 256² windows of BRAT region 1 (all 5 bands, the 8 dihedral symmetries) — the
  WinProp data family the product is judged on. Region 2 is never read here: it is the
  validation region.
* ``sim``: the project's vectorised simulator, generated on the fly on the same device.
* ``raytrace``: a Sionna RT corpus on disk (``python -m wifidiff_fast.raytrace``), if present.

Every batch holds model-space targets ``x0 [B,H,W]`` (buildings filled with −1), the building
mask ``B``, and a sparse-sample condition ``S, M`` with N drawn log-uniformly per map, so one
network serves every N of the protocol.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..data.loaders import load_brat_region
from ..data.symmetry import dihedral
from ..data.units import P_MAX_DBM, P_MIN_DBM, dbm_to_model

N_RANGE = (5, 300)


def draw_conditions(
    x0: torch.Tensor, buildings: torch.Tensor, generator: torch.Generator, n_range: tuple[int, int] = N_RANGE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random sample rasters: per map N ~ log-uniform(n_range) open pixels. Returns S, M, N."""
    Bn, H, W = x0.shape
    lo, hi = math.log(n_range[0]), math.log(n_range[1])
    n = torch.exp(torch.rand(Bn, generator=generator) * (hi - lo) + lo).round().long()
    scores = torch.rand(Bn, H * W, generator=generator).to(x0.device)
    scores = torch.where(buildings.reshape(Bn, -1) > 0, torch.full_like(scores, -1.0), scores)
    order = torch.topk(scores, int(n.max()), dim=1).indices
    take = torch.arange(order.shape[1], device=x0.device)[None] < n.to(x0.device)[:, None]
    take &= scores.gather(1, order) >= 0
    M = torch.zeros(Bn, H * W, device=x0.device, dtype=x0.dtype)
    M.scatter_(1, order, take.to(x0.dtype))
    M = M.reshape(Bn, H, W)
    return x0 * M, M, n


class BatchSource:
    """Endless mixed batches on ``device``. ``mix`` maps source name → probability."""

    def __init__(
        self,
        device: str = "cpu",
        size: int = 256,
        mix: dict[str, float] | None = None,
        seed: int = 0,
        data_dir: str | None = None,
        raytrace_dir: str | None = None,
        crop: int | None = None,
    ):
        self.device = torch.device(device)
        self.size = size
        # Train on random crop × crop windows of the size × size maps: the same pixel scale and
        # scenes, a quarter of the network's work at 128² of 256². N is drawn at the full map's
        # sample density (its range scaled by the crop's area), so a crop sees what its part of a
        # full-size request would.
        if crop is not None and not 16 <= int(crop) <= size:
            raise ValueError(f"crop must be in 16..{size} px (the map size), got {crop}")
        self.crop = None if crop is None or int(crop) == size else int(crop)
        self.gen = torch.Generator().manual_seed(seed)
        self.mix = dict(mix or {"brat": 0.5, "sim": 0.5})
        unknown = sorted(set(self.mix) - {"brat", "sim", "raytrace"})
        if unknown:  # otherwise an AttributeError from next(), after loading the data
            raise ValueError(
                f"unknown training source(s) {', '.join(map(repr, unknown))} in the mix; "
                "use brat, sim, raytrace (e.g. --mix brat:0.5,sim:0.5)"
            )
        self.brat = None
        if self.mix.get("brat", 0) > 0:
            region = load_brat_region(1, data_dir)
            rss = torch.from_numpy(dbm_to_model(np.nan_to_num(region.rss_dbm, nan=P_MIN_DBM))).float()
            self.brat = (rss.to(self.device), torch.from_numpy(region.buildings).float().to(self.device))
        self.raytrace = []
        if self.mix.get("raytrace", 0) > 0 and raytrace_dir and Path(raytrace_dir).is_dir():
            self.raytrace = sorted(Path(raytrace_dir).glob("*.npz"))
        if not self.raytrace:
            self.mix.pop("raytrace", None)
        if self.mix.get("sim", 0) > 0:
            try:
                from ..data import simulator  # noqa: F401
            except ImportError:
                self.mix.pop("sim")
        total = sum(self.mix.values())
        if total <= 0:
            raise ValueError("no training source is available (brat, sim, raytrace)")
        self.names = list(self.mix)
        self.probs = torch.tensor([self.mix[k] / total for k in self.names])

    def _brat(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rss, b = self.brat
        _, H, W = rss.shape
        xs, bs = [], []
        for _ in range(n):
            band = int(torch.randint(rss.shape[0], (1,), generator=self.gen))
            r = int(torch.randint(H - self.size + 1, (1,), generator=self.gen))
            c = int(torch.randint(W - self.size + 1, (1,), generator=self.gen))
            k = int(torch.randint(8, (1,), generator=self.gen))
            xs.append(dihedral(rss[band, r : r + self.size, c : c + self.size], k))
            bs.append(dihedral(b[r : r + self.size, c : c + self.size], k))
        return torch.stack(xs), torch.stack(bs)

    def _sim(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        from ..data.simulator import simulate_batch

        seed = int(torch.randint(2**31 - 1, (1,), generator=self.gen))
        sb = simulate_batch(n, self.size, seed=seed, device=self.device)
        b = torch.as_tensor(sb.buildings, device=self.device).float()
        x = dbm_to_model(torch.as_tensor(sb.rss_dbm, device=self.device).float(), P_MIN_DBM, P_MAX_DBM)
        return x, b

    def _raytrace(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, bs = [], []
        for _ in range(n):
            path = self.raytrace[int(torch.randint(len(self.raytrace), (1,), generator=self.gen))]
            with np.load(path, allow_pickle=False) as z:
                rss, b = z["rss_dbm"], z["buildings"]
            k = int(torch.randint(8, (1,), generator=self.gen))
            x = torch.from_numpy(dbm_to_model(np.nan_to_num(rss, nan=P_MIN_DBM))).float()
            xs.append(dihedral(x, k))
            bs.append(dihedral(torch.from_numpy(b).float(), k))
        return torch.stack(xs).to(self.device), torch.stack(bs).to(self.device)

    def _crop(self, x0: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One random ``crop``² window per map."""
        c, xs, bs = self.crop, [], []
        for i in range(x0.shape[0]):
            r = int(torch.randint(x0.shape[1] - c + 1, (1,), generator=self.gen))
            q = int(torch.randint(x0.shape[2] - c + 1, (1,), generator=self.gen))
            xs.append(x0[i, r : r + c, q : q + c])
            bs.append(B[i, r : r + c, q : q + c])
        return torch.stack(xs), torch.stack(bs)

    def next(self, batch: int) -> dict[str, torch.Tensor]:
        counts = torch.bincount(
            torch.multinomial(self.probs, batch, replacement=True, generator=self.gen),
            minlength=len(self.names),
        )
        xs, bs = [], []
        for name, count in zip(self.names, counts.tolist()):
            if count:
                x, b = getattr(self, f"_{name}")(count)
                xs.append(x)
                bs.append(b)
        x0 = torch.cat(xs).clamp(-1, 1)
        B = torch.cat(bs)
        n_range = N_RANGE
        if self.crop is not None:
            x0, B = self._crop(x0, B)
            share = (self.crop / self.size) ** 2
            n_range = (max(1, round(N_RANGE[0] * share)), max(2, round(N_RANGE[1] * share)))
        x0 = torch.where(B > 0, torch.full_like(x0, -1.0), x0)
        S, M, n = draw_conditions(x0, B, self.gen, n_range)
        return {"x0": x0, "B": B, "S": S, "M": M, "n": n}
