"""The corpus on disk: one reproducible ``.npz`` per map, the manifest, and the worker processes
that make them (a rerun resumes where the last one stopped)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .backend import import_sionna, sionna_available
from .config import RTConfig
from .scene import building_heights, sample_buildings, sample_sites
from .trace import trace_map


def map_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), 0x5A7])


def make_map(seed: int, index: int, cfg: RTConfig, data_dir: str | Path | None = None) -> dict:
    """One corpus record (the ``.npz`` payload), a pure function of ``(seed, index, cfg)``."""
    rng = map_rng(seed, index)
    E, m, S = cfg.extent, cfg.margin, cfg.size
    buildings_ext, tag = sample_buildings(cfg.source, E, rng, seed, index, data_dir)
    heights = building_heights(buildings_ext, rng, cfg.building_height_m)
    sites = sample_sites(buildings_ext, cfg, rng)
    site_z = rng.uniform(cfg.mast_height_m[0], cfg.mast_height_m[1], size=len(sites))
    azimuths = rng.uniform(0.0, 120.0, size=len(sites))
    freq = float(cfg.freqs_mhz[int(rng.integers(len(cfg.freqs_mhz)))])
    solver_seed = int(rng.integers(2**31 - 1))
    rss = trace_map(heights, sites, site_z, freq, cfg, solver_seed, azimuths)
    buildings = buildings_ext[m : m + S, m : m + S].astype(np.uint8)
    rss = np.where(buildings == 1, np.nan, rss).astype(np.float32)
    return {
        "rss_dbm": rss,
        "buildings": buildings,
        "tx_rc": (sites - m).astype(np.float32),
        "tx_z_m": site_z.astype(np.float32),
        "freq_mhz": np.float32(freq),
        "source": np.str_(tag),
    }


def map_path(out: Path, seed: int, index: int) -> Path:
    return out / f"rt_{seed}_{index:05d}.npz"


def _write_npz(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **record)
    os.replace(tmp, path)


def _write_manifest(out: Path, cfg: RTConfig, seed: int, n: int, sionna_version: str, stats: dict) -> None:
    done = sorted(
        int(p.stem.split("_")[-1]) for p in out.glob(f"rt_{seed}_*.npz") if not p.name.endswith(".tmp.npz")
    )
    manifest_path = out / "manifest.json"
    manifest = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            manifest = {}
    runs = manifest.get("runs", {})
    if not stats.get("maps_this_run"):
        # A resumed run that made nothing keeps the timings of the run that made the maps.
        stats = {
            **stats,
            **{
                k: v
                for k, v in runs.get(str(seed), {}).items()
                if k in ("seconds_per_map", "worker_seconds_per_map", "maps_this_run", "workers")
            },
        }
    runs[str(seed)] = {
        "config": cfg.to_json(),
        "n_requested": int(n),
        "count_done": int(sum(1 for i in done if i < n)),
        "indices_done": len(done),
        **stats,
    }
    manifest.update(
        {
            "format": "wifidiff_fast raytrace corpus v1",
            "generator": "wifidiff_fast.raytrace (Sionna RT RadioMapSolver)",
            "sionna_rt": sionna_version,
            "file_pattern": "rt_{seed}_{index:05d}.npz",
            "keys": {
                "rss_dbm": "float32 [H,W] dBm, NaN on buildings, floor-clipped",
                "buildings": "uint8 [H,W] 1=building",
                "tx_rc": "float32 [n_sites,2] (row,col)",
                "tx_z_m": "float32 [n_sites] antenna height m",
                "freq_mhz": "float32",
                "source": "str procedural|brat1",
            },
            "count_done": int(sum(r.get("count_done", 0) for r in runs.values())),
            "runs": runs,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, manifest_path)


def _make_and_write(job: tuple) -> tuple[int, float]:
    """Worker body: make map ``index`` and write it (atomically). Returns (index, seconds)."""
    out, seed, index, cfg_dict, data_dir = job
    cfg = RTConfig(**cfg_dict)
    t0 = time.perf_counter()
    _write_npz(map_path(Path(out), seed, index), make_map(seed, index, cfg, data_dir))
    return index, time.perf_counter() - t0


def _worker_init() -> None:
    import_sionna()
    try:  # one Dr.Jit thread per worker; keep torch (layouts) from oversubscribing too
        import torch

        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001
        pass


def generate(
    out: str | Path,
    n: int,
    cfg: RTConfig,
    seed: int = 0,
    batch: int = 8,
    workers: int = 1,
    progress: bool = True,
    data_dir: str | Path | None = None,
) -> dict:
    """Write maps ``0..n-1`` of ``seed`` into ``out``, skipping the ones already there.

    ``workers`` processes (spawned; each runs Dr.Jit single-threaded, ~0.5 GB) share the maps;
    every map is a pure function of ``(seed, index, cfg)``, so the files do not depend on
    ``workers``. The manifest is rewritten after every ``batch`` maps, and each ``.npz`` is written
    atomically, so an interrupted run loses at most the maps in flight. A config that differs from
    the one on record for this seed is refused (the files would mix two configurations).
    """
    from tqdm import tqdm

    ok, version = sionna_available()
    if not ok:
        raise ImportError(version)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.tmp.npz"):
        stale.unlink()
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        try:
            prior = json.loads(manifest_path.read_text()).get("runs", {}).get(str(seed))
        except json.JSONDecodeError:
            prior = None
        if prior is not None and prior.get("config") != json.loads(json.dumps(cfg.to_json())):
            raise ValueError(
                f"{out} already holds seed {seed} made with another config; use another "
                f"--out or --seed (recorded: {prior.get('config')})"
            )
    todo = [i for i in range(n) if not map_path(out, seed, i).exists()]
    jobs = [
        (str(out), int(seed), i, cfg.to_json(), None if data_dir is None else str(data_dir)) for i in todo
    ]
    workers = max(1, min(int(workers), len(jobs) or 1))
    # seconds_per_map: wall clock per map for the whole run (what throughput to expect);
    # worker_seconds_per_map: wall clock of one map inside one worker.
    stats = {"seconds_per_map": None, "worker_seconds_per_map": None, "maps_this_run": 0, "workers": workers}
    t_start, cpu_sum, made = time.perf_counter(), 0.0, 0
    bar = tqdm(
        total=n,
        initial=n - len(todo),
        unit="map",
        disable=not progress,
        desc=f"raytrace {cfg.source}",
        dynamic_ncols=True,
    )

    def done(seconds: float) -> None:
        nonlocal made, cpu_sum
        made += 1
        cpu_sum += seconds
        wall = (time.perf_counter() - t_start) / made
        bar.update(1)
        bar.set_postfix(s_per_map=f"{wall:.2f}")
        stats.update(
            seconds_per_map=round(wall, 3),
            worker_seconds_per_map=round(cpu_sum / made, 3),
            maps_this_run=made,
        )
        if made % max(1, batch) == 0:
            _write_manifest(out, cfg, seed, n, version, stats)

    try:
        if workers == 1:
            for job in jobs:
                done(_make_and_write(job)[1])
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers, initializer=_worker_init) as pool:
                for _, seconds in pool.imap_unordered(_make_and_write, jobs, chunksize=1):
                    done(seconds)
    finally:
        bar.close()
        _write_manifest(out, cfg, seed, n, version, stats)
    return {
        "out": str(out),
        "made": made,
        "skipped": n - len(todo),
        "workers": workers,
        "seconds_per_map": stats["seconds_per_map"],
        "worker_seconds_per_map": stats.get("worker_seconds_per_map"),
    }
