"""Train the learned transmitter heat map (:mod:`wifidiff_fast.models.heatmap`). Resumable.

    python -m wifidiff_fast.train.heatmap --work out/heatmap --steps 1500
    python -m wifidiff_fast.train.heatmap --work out/heatmap --export wifidiff_fast/checkpoints/heatmap

Training maps, never BRAT region 2 (the validation region) nor any held-out region:

* **BRAT region 1**: random 256² windows that hold a site, any of the 5 bands, its 3 known sites;
* **simulator maps** (``SimConfig(tx_kind="mast", mast_model="prior")``: the calibrated prior's
  masts plus shadowing, region-like and random placements), generated once into ``--work`` in
  resumable chunks.

Each example: a random dihedral flip of the map, N log-uniform in 10..50 uniform samples, the
network inputs and the Gaussian site targets of every site in the extended area. Loss: the
CenterNet focal loss. The state (weights, optimiser, step, RNG) is saved every ``--save-every``
steps; rerunning the same command continues from it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..data.loaders import load_brat_region
from ..data.protocol import draw_samples
from ..models.heatmap import OUT_CELLS, SiteHeatmapNet, heatmap_inputs, site_targets

__all__ = ["main", "focal_loss"]

SIZE = 256
SIM_CHUNK = 8


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of sites (≥ 1)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 0.999
    pos_loss = -((1 - p) ** alpha * torch.log(p))[pos].sum()
    neg_loss = -((1 - target) ** beta * p**alpha * torch.log(1 - p))[~pos].sum()
    return (pos_loss + neg_loss) / max(int(pos.sum()), 1)


def _sim_pool(work: Path, n_maps: int, log) -> list[dict]:
    """Simulator maps in ``work/sim_*.npz`` chunks (made once; a cut-off run resumes)."""
    from ..data.simulator import SimConfig, simulate_batch

    cfg = SimConfig(tx_kind="mast", mast_model="prior")
    pool = []
    for k in range(math.ceil(n_maps / SIM_CHUNK)):
        path = work / f"sim_{k:03d}.npz"
        if not path.exists():
            t0 = time.time()
            sb = simulate_batch(SIM_CHUNK, SIZE, seed=7000 + k, config=cfg)
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(
                tmp,
                rss=sb.rss_dbm.numpy(),
                buildings=sb.buildings.numpy(),
                tx=sb.tx_rc.numpy(),
                freq=sb.freq_mhz.numpy(),
            )
            tmp.rename(path)
            log(f"simulated chunk {k + 1}/{math.ceil(n_maps / SIM_CHUNK)} ({time.time() - t0:.0f} s)")
        z = np.load(path)
        for i in range(z["rss"].shape[0]):
            tx = z["tx"][i]
            pool.append(
                dict(
                    rss=z["rss"][i],
                    buildings=z["buildings"][i],
                    tx=tx[np.isfinite(tx).all(1)],
                    freq=float(z["freq"][i]),
                )
            )
    return pool


def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    a = np.rot90(a, k % 4)
    return np.ascontiguousarray(a[:, ::-1] if k >= 4 else a)


def _dihedral_rc(rc: np.ndarray, k: int, n: int) -> np.ndarray:
    """Pixel coordinates under :func:`_dihedral` of an ``n × n`` array."""
    r, c = rc[:, 0].copy(), rc[:, 1].copy()
    for _ in range(k % 4):  # np.rot90 (counter-clockwise): (r, c) → (n − 1 − c, r)
        r, c = n - 1 - c, r
    if k >= 4:
        c = n - 1 - c
    return np.stack([r, c], 1)


class _Examples:
    """Random training examples from region 1 and the simulator pool."""

    def __init__(self, region, pool: list[dict], sim_fraction: float, rng: np.random.Generator):
        self.region, self.pool, self.sim_fraction, self.rng = region, pool, sim_fraction, rng

    def _region_window(self):
        H, W = self.region.buildings.shape
        while True:
            r, c = int(self.rng.integers(0, H - SIZE + 1)), int(self.rng.integers(0, W - SIZE + 1))
            rel = self.region.tx_rc.astype(np.float64) - np.array([r, c])
            if ((rel >= 0) & (rel < SIZE)).all(1).any():
                break
        j = int(self.rng.integers(len(self.region.freqs_mhz)))
        b = self.region.buildings[r : r + SIZE, c : c + SIZE]
        rss = self.region.rss_dbm[j, r : r + SIZE, c : c + SIZE]
        return rss, b, rel, float(self.region.freqs_mhz[j])

    def draw(self):
        if self.pool and self.rng.random() < self.sim_fraction:
            m = self.pool[int(self.rng.integers(len(self.pool)))]
            rss, b, tx, f = m["rss"], m["buildings"], m["tx"].astype(np.float64), m["freq"]
        else:
            rss, b, tx, f = self._region_window()
        k = int(self.rng.integers(8))
        rss, b, tx = _dihedral(rss, k), _dihedral(b, k), _dihedral_rc(tx, k, SIZE)
        n = int(round(math.exp(self.rng.uniform(math.log(10), math.log(50)))))
        s = draw_samples(np.where(b == 1, np.nan, rss), b, n, self.rng)
        return heatmap_inputs(b, s, f), site_targets(tx, (SIZE, SIZE))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.train.heatmap", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--work", default="out/heatmap", help="work dir: state, simulator pool, log (default out/heatmap)"
    )
    ap.add_argument("--steps", type=int, default=1500, help="total optimiser steps (default 1500)")
    ap.add_argument("--batch", type=int, default=16, help="maps per step (default 16)")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default 2e-3)")
    ap.add_argument("--sim-maps", type=int, default=320, help="simulator maps in the pool (default 320)")
    ap.add_argument(
        "--sim-fraction", type=float, default=0.5, help="share of simulator examples (default 0.5)"
    )
    ap.add_argument("--save-every", type=int, default=25, help="steps between saved states (default 25)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", metavar="DIR", help="write the trained weights + record to DIR and exit")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.pt"

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    net = SiteHeatmapNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    step, rng = 0, np.random.default_rng(args.seed)
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, rng = st["step"], st["rng"]
        log(f"resumed at step {step}")
    if args.export:
        return _export(net, step, args, Path(args.export), work)
    # --sim-fraction 1: a simulator-only model, which never reads BRAT (the purest cross-city test)
    region = load_brat_region(1) if args.sim_fraction < 1 else None
    pool = _sim_pool(work, args.sim_maps, log)
    if not pool and region is None:
        raise SystemExit("nothing to train on: --sim-fraction 1 needs --sim-maps > 0")
    data = _Examples(region, pool, args.sim_fraction, rng)
    sched = lambda s: args.lr * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps))  # noqa: E731
    log_path = work / "log.csv"
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as fh:
        w = csv.writer(fh)
        if new_log:
            w.writerow(["step", "loss", "lr", "seconds"])
        t0, losses = time.time(), []
        while step < args.steps:
            xs, ys = zip(*(data.draw() for _ in range(args.batch)))
            for g in opt.param_groups:
                g["lr"] = sched(step)
            loss = focal_loss(net(torch.stack(xs)), torch.stack(ys))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            if step % args.save_every == 0 or step == args.steps:
                w.writerow(
                    [
                        step,
                        round(float(np.mean(losses)), 5),
                        round(sched(step), 6),
                        round(time.time() - t0, 1),
                    ]
                )
                fh.flush()
                tmp = state_path.with_suffix(".tmp")
                torch.save(dict(model=net.state_dict(), opt=opt.state_dict(), step=step, rng=data.rng), tmp)
                tmp.rename(state_path)
                log(f"step {step}/{args.steps} loss {np.mean(losses):.4f} ({time.time() - t0:.0f} s)")
                t0, losses = time.time(), []
    return 0


def _export(net, step: int, args, out: Path, work: Path) -> int:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "weights.safetensors"))
    brat = [1] if args.sim_fraction < 1 else []
    record = dict(
        steps=step,
        planned_steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        sim_maps=args.sim_maps,
        sim_fraction=args.sim_fraction,
        brat_regions=brat,
        trained_on=[f"BRAT region {k} (all bands)" for k in brat]
        + ["simulator masts (mast_model='prior', calibrated on BRAT region 1)"],
        out_cells=OUT_CELLS,
        params=sum(p.numel() for p in net.parameters()),
    )
    (out / "record.json").write_text(json.dumps(record, indent=1) + "\n")
    log_csv = work / "log.csv"
    if log_csv.exists():
        (out / "training_log.csv").write_text(log_csv.read_text())
    print(f"exported step {step} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
