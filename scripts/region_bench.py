"""Regions larger than the tile and Ray throughput: the numbers of docs/results/product.md.

    python scripts/region_bench.py seam  --out docs/results/product_seam.json
    python scripts/region_bench.py brat  --out docs/results/product_brat.json   # needs ../shared/data
    python scripts/region_bench.py city  --out docs/results/product_city.json   # 4096×4096
    python scripts/region_bench.py ray   --out docs/results/product_ray.json

seam: a 112×160 simulator scene (80 samples), 64-px tiles with 16-px overlap: RMSE in the blend
      bands (pixels covered by two or more tiles) vs the tile interiors, for the boost map, the
      physics default (tiles localise on their own) and the shared-sites second pass, beside one
      untiled estimate.
brat: the full BRAT regions 1 and 2 at 5750 MHz, N samples drawn with the evaluation protocol's
      seeds, tiled physics (256/64) vs IDW and kriging on the whole region.
city: a 4096×4096 synthetic city (random layouts) with samples from a log-distance field, the
      boost map per tile (diffusion, candidates=0: the cheapest path, to measure the tiling
      machinery), time and peak resident memory.
ray:  16 maps of 64×64 (physics default) on a local Ray cluster with 1 and 2 workers vs this
      process; and the per-task overhead (32×32 boost maps, Ray time per map − local time per map).
Times are medians/ratios of one run on the machine named in the output; its load is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_1min_at_start": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def rmse(a, b, mask):
    return float(np.sqrt(np.nanmean((a[mask] - b[mask]) ** 2)))


def seam(est) -> dict:
    from wifidiff_fast.data.protocol import draw_samples
    from wifidiff_fast.data.simulator import simulate_scenes
    from wifidiff_fast.tiling import estimate_region, plan_tiles

    sc = simulate_scenes(1, 192, seed=5)[0]
    b, truth = sc.buildings[:112, :160], sc.rss_dbm[:112, :160]
    s = draw_samples(truth, b, 80, 1)
    cover = np.zeros(b.shape, int)
    for t in plan_tiles(b.shape, 64, 16):
        cover[t.window] += 1
    band, inside = (cover >= 2) & (b == 0), (cover == 1) & (b == 0)
    rows = {}
    for name, kw in (
        ("boost map (diffusion, candidates=0)", dict(mode="diffusion", candidates=0)),
        ("physics, tiles localise on their own (default)", dict()),
        ("physics, shared sites (second pass)", dict(share_sites=True)),
    ):
        t0 = time.perf_counter()
        r = estimate_region(est, b, s, tile=64, overlap=16, **kw)
        rows[name] = {
            "rmse_band_db": rmse(r.rss_dbm, truth, band),
            "rmse_inside_db": rmse(r.rss_dbm, truth, inside),
            "seconds": time.perf_counter() - t0,
            "tiles": r.tiles,
        }
    t0 = time.perf_counter()
    d = est.estimate(b, s)
    rows["physics, untiled"] = {
        "rmse_band_db": rmse(d.rss_dbm, truth, band),
        "rmse_inside_db": rmse(d.rss_dbm, truth, inside),
        "seconds": time.perf_counter() - t0,
    }
    return {
        "scene": "simulate_scenes(1, 192, seed=5)[0][:112, :160], 80 samples (seed 1)",
        "tile": 64,
        "overlap": 16,
        "band_pixels": int(band.sum()),
        "inside_pixels": int(inside.sum()),
        "rows": rows,
    }


def brat(est, n: int) -> dict:
    from wifidiff_fast.data.loaders import load_brat_region
    from wifidiff_fast.data.protocol import draw_samples, map_seed
    from wifidiff_fast.eval.baselines import idw, kriging
    from wifidiff_fast.tiling import estimate_region

    out = {}
    for k in (1, 2):
        region = load_brat_region(k)
        j = list(region.freqs_mhz).index(5750)
        truth, b = region.rss_dbm[j], region.buildings
        s = draw_samples(truth, b, n, map_seed(0, k, n))
        ok = b == 0
        row = {"shape": list(b.shape), "n": n}
        for name, fn in (("idw", idw), ("kriging", kriging)):
            t0 = time.perf_counter()
            row[name] = {"rmse_db": rmse(fn(b, s), truth, ok), "seconds": time.perf_counter() - t0}
        t0 = time.perf_counter()
        r = estimate_region(est, b, s, tile=256, overlap=64, freq_mhz=5750.0)
        row["physics_tiled"] = {
            "rmse_db": rmse(r.rss_dbm, truth, ok),
            "seconds": time.perf_counter() - t0,
            "tiles": r.tiles,
            "sites_merged": r.n_sites,
            "true_sites": region.tx_rc.tolist(),
        }
        out[f"region{k}"] = row
        print(k, row, flush=True)
    return out


def city(est, size: int) -> dict:
    from wifidiff_fast.data.layouts import random_layouts
    from wifidiff_fast.tiling import estimate_region

    g = torch.Generator().manual_seed(0)
    # 16×16 blocks of 256-px layouts: a city of size×size
    blocks = size // 256
    lay = random_layouts(blocks * blocks, 256, g).numpy().astype(np.uint8)
    b = lay.reshape(blocks, blocks, 256, 256).transpose(0, 2, 1, 3).reshape(size, size)
    rng = np.random.default_rng(0)
    free = np.argwhere(b == 0)
    pick = free[rng.choice(len(free), 40 * blocks * blocks, replace=False)]
    sites = rng.uniform(0, size, (blocks * blocks // 4, 2))
    d = np.min(np.hypot(pick[:, None, 0] - sites[None, :, 0], pick[:, None, 1] - sites[None, :, 1]), axis=1)
    s = np.column_stack([pick, np.clip(-30.0 - 30.0 * np.log10(1 + d), -125, -15)])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    done = []
    r = estimate_region(
        est,
        b,
        s,
        tile=256,
        overlap=64,
        mode="diffusion",
        candidates=0,
        progress=lambda stage, k, total: done.append(time.perf_counter()),
    )
    secs = time.perf_counter() - t0
    per_tile = np.diff([t0] + done)
    return {
        "shape": [size, size],
        "samples": len(s),
        "tiles": r.tiles,
        "seconds": secs,
        "median_seconds_per_tile": float(np.median(per_tile)),
        "peak_rss_mb_before": rss0,
        "peak_rss_mb_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "output_mb": r.rss_dbm.nbytes / 2**20,
        "finite_open": bool(np.isfinite(r.rss_dbm[b == 0]).all()),
    }


def ray_bench(est, maps: int) -> dict:
    import ray

    from wifidiff_fast.distributed import RayExecutor

    rng = np.random.default_rng(0)

    def make(h, n):
        b = (rng.random((h, h)) < 0.12).astype(np.uint8)
        free = np.argwhere(b == 0)
        pick = free[rng.choice(len(free), n, replace=False)]
        return b, np.column_stack([pick, rng.uniform(-100, -40, n)])

    jobs = [make(64, 12) for _ in range(maps)]
    tiny = [make(32, 4) for _ in range(maps)]
    out = {"maps": maps}
    for b, s in jobs[:2] + tiny[:2]:  # warm-up: first calls build caches
        est.estimate(b, s)
        est.estimate(b, s, mode="diffusion", candidates=0)
    t0 = time.perf_counter()
    for b, s in jobs:
        est.estimate(b, s)
    out["local_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b, s in tiny:
        est.estimate(b, s, mode="diffusion", candidates=0)
    out["local_tiny_seconds_per_map"] = (time.perf_counter() - t0) / maps
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for workers in (1, 2):
            with RayExecutor(est, workers=workers, threads_per_worker=1) as ex:
                list(ex.estimate_many(jobs[:workers] + tiny[:workers]))  # actors up and warm
                list(ex.estimate_many(tiny[: 2 * workers], mode="diffusion", candidates=0))
                t0 = time.perf_counter()
                list(ex.estimate_many(jobs))
                out[f"ray_{workers}_seconds"] = time.perf_counter() - t0
                if workers == 1:
                    t0 = time.perf_counter()
                    list(ex.estimate_many(tiny, mode="diffusion", candidates=0))
                    out["ray_tiny_seconds_per_map"] = (time.perf_counter() - t0) / maps
    finally:
        ray.shutdown()
    out["speedup_2_vs_1_workers"] = out["ray_1_seconds"] / out["ray_2_seconds"]
    out["overhead_ms_per_task"] = 1e3 * (out["ray_tiny_seconds_per_map"] - out["local_tiny_seconds_per_map"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("seam", "brat", "city", "ray"))
    p.add_argument("--out", default=None, help="write the JSON here")
    p.add_argument("--n", type=int, default=200, help="brat: samples per region")
    p.add_argument("--size", type=int, default=4096, help="city: side in pixels (a multiple of 256)")
    p.add_argument("--maps", type=int, default=16, help="ray: maps per run")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads in this process")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from wifidiff_fast import RadioMapEstimator

    est = RadioMapEstimator.from_pretrained("small")
    report = {"machine": machine(), "command": " ".join(["python", "scripts/region_bench.py", *sys.argv[1:]])}
    report[args.what] = {
        "seam": lambda: seam(est),
        "brat": lambda: brat(est, args.n),
        "city": lambda: city(est, args.size),
        "ray": lambda: ray_bench(est, args.maps),
    }[args.what]()
    report["machine"]["load_1min_at_end"] = os.getloadavg()[0]
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
