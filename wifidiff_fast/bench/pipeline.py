"""``python -m wifidiff_fast.bench pipeline``: end-to-end latency per stage (DESIGN §6).

The paper workload (1 map, 256², N = 50, K = 64, S = 10) and a batch workload, each run with the
engine (``backend="auto"``: fused ops where available) and the plain-PyTorch reference
(``backend="reference"``) on the same inputs in the same process, after a warm-up: p50/p90 per
stage, maps/s, peak memory, and the reference/engine ratio. A table for people, JSON for
machines (``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys

import numpy as np
import torch

from .memory import PeakRSS

STAGES = ("boost", "critical_points", "generation", "election", "total")


def _inputs(n_maps: int, n_samples: int, seed: int):
    from ..data.loaders import example_scenes
    from ..data.protocol import draw_samples, map_seed

    scenes = example_scenes()
    items = []
    for i in range(n_maps):
        sc = scenes[i % len(scenes)]
        items.append(
            (sc.buildings, draw_samples(sc.rss_dbm, sc.buildings, n_samples, map_seed(seed, i, n_samples)))
        )
    return items


def run(
    workload: str, backend: str, est_kwargs: dict, items, repeats: int, device: torch.device, **kw
) -> dict:
    from .. import RadioMapEstimator

    est = RadioMapEstimator.from_pretrained(est_kwargs["checkpoint"], device=str(device), backend=backend)
    kw = {"mode": "diffusion", **kw}  # this benchmark times the diffusion path's stages
    est.estimate_batch(items, **kw)  # warm-up (JIT builds, allocator, caches of small tables)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    per_stage = {s: [] for s in STAGES}
    # CPU: the RSS sampled during the timed runs (ru_maxrss would be the process's lifetime peak,
    # build and warm-up included); CUDA: the allocator's peak since the reset above
    with PeakRSS() if device.type != "cuda" else contextlib.nullcontext() as rss:
        for _ in range(repeats):
            res = est.estimate_batch(items, **kw)
            for s in STAGES:
                per_stage[s].append(res[0].timings_ms.get(s, 0.0))
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else rss.peak_mb
    out = {
        "workload": workload,
        "backend": backend,
        "maps": len(items),
        "repeats": repeats,
        "peak_mem_mb": round(peak, 1),
    }
    for s in STAGES:
        v = np.asarray(per_stage[s])
        out[f"{s}_p50_ms"] = float(np.percentile(v, 50))
        out[f"{s}_p90_ms"] = float(np.percentile(v, 90))
    out["maps_per_s"] = len(items) / (out["total_p50_ms"] / 1e3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.bench pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--candidates", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n", type=int, default=50, help="samples per map")
    p.add_argument("--batch", type=int, default=4, help="maps in the batch workload (0: skip it)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", default="auto,reference")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    kw = dict(candidates=args.candidates, steps=args.steps, seed=0)
    workloads = [("paper (1 map)", _inputs(1, args.n, 0))]
    if args.batch > 0:
        workloads.append((f"batch ({args.batch} maps)", _inputs(args.batch, args.n, 1)))
    rows = []
    for name, items in workloads:
        for backend in args.backends.split(","):
            rows.append(
                run(name, backend, {"checkpoint": args.checkpoint}, items, args.repeats, device, **kw)
            )
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"pipeline latency, {args.device}, K={args.candidates}, S={args.steps}, N={args.n} (p50 ms)"
    )
    for col in ("workload", "backend", *STAGES, "total p90", "maps/s", "peak MB", "ref/engine"):
        table.add_column(col, justify="left" if col in ("workload", "backend") else "right")
    for r in rows:
        ref = next((x for x in rows if x["workload"] == r["workload"] and x["backend"] == "reference"), None)
        ratio = f"{ref['total_p50_ms'] / r['total_p50_ms']:.2f}×" if ref else ""
        table.add_row(
            r["workload"],
            r["backend"],
            *(f"{r[f'{s}_p50_ms']:.1f}" for s in STAGES),
            f"{r['total_p90_ms']:.1f}",
            f"{r['maps_per_s']:.3f}",
            f"{r['peak_mem_mb']:.0f}",
            ratio,
        )
    Console(width=160).print(table)
    if args.json:
        meta = {
            "device": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "cpu_count": __import__("os").cpu_count(),
            "torch": torch.__version__,
            "command": " ".join(sys.argv),
        }
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)
    return 0
