"""``python -m wifidiff_fast.bench reuse-accuracy``: midpoint reuse R — accuracy and generation time.

For each R in ``--ratios`` and each map: one call on a cold cache (stage 1 computed and stored)
and one on the same layout with *new* samples (stage 1 read from the cache: the repeated-layout
case midpoint reuse is for). Accuracy is that of the paper's election among diffusion candidates
(``boost_candidate=False``), so the boost map, which does not depend on R, cannot hide the effect.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.bench reuse-accuracy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="brat-val")
    p.add_argument("--limit", type=int, default=3, help="maps (default 3)")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--candidates", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--ratios", default="0,0.3,0.5,0.7,0.9")
    p.add_argument("--checkpoint", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from .. import RadioMapEstimator
    from ..data.protocol import draw_samples, map_seed
    from ..eval import nmse, rmse_db
    from ..eval.datasets import get_dataset

    scenes = get_dataset(args.dataset, limit=args.limit)
    rows = []
    for R in (float(r) for r in args.ratios.split(",")):
        est = RadioMapEstimator.from_pretrained(args.checkpoint, device=args.device)  # fresh, empty cache
        gen_cold, gen_warm, errs, nm = [], [], [], []
        for i, sc in enumerate(scenes):
            for call, gen_list in ((0, gen_cold), (1, gen_warm)):
                samples = draw_samples(sc.rss_dbm, sc.buildings, args.n, map_seed(call, i, args.n))
                res = est.estimate(
                    sc.buildings,
                    samples,
                    mode="diffusion",
                    candidates=args.candidates,
                    steps=args.steps,
                    reuse=R,
                    seed=0,
                    boost_candidate=False,
                )
                gen_list.append(res.timings_ms["generation"])
                errs.append(rmse_db(res.rss_dbm, sc.rss_dbm))
                nm.append(nmse(res.rss_dbm, sc.rss_dbm))
        rows.append(
            {
                "R": R,
                "stage1_steps": int(round(R * args.steps)),
                "rmse_db": float(np.mean(errs)),
                "nmse": float(np.mean(nm)),
                "gen_cold_ms": float(np.median(gen_cold)),
                "gen_warm_ms": float(np.median(gen_warm)),
                "cache_hits": est.cache.hits,
            }
        )
    base = rows[0]["gen_warm_ms"]
    table = Table(
        title=f"midpoint reuse on {args.dataset} ({len(scenes)} maps × 2 sample draws, N={args.n}, "
        f"K={args.candidates}, S={args.steps}, {args.device})"
    )
    for col in (
        "R",
        "stage-1 steps",
        "RMSE dB",
        "NMSE",
        "gen ms (cold)",
        "gen ms (repeated layout)",
        "speed-up",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['R']:.1f}",
            str(r["stage1_steps"]),
            f"{r['rmse_db']:.3f}",
            f"{r['nmse']:.5f}",
            f"{r['gen_cold_ms']:.0f}",
            f"{r['gen_warm_ms']:.0f}",
            f"{base / r['gen_warm_ms']:.2f}×",
        )
    Console(width=150).print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"command": " ".join(sys.argv), "rows": rows}, fh, indent=2)
    return 0
