"""Regions larger than the model's tile: overlapping tiles, each estimated on its own, blended.

    tiles  = plan_tiles(H×W, tile, overlap)                      (plan.py)
    map_t  = estimate(window_t)                 every tile, any executor (local, Ray)
    map    = Σ_t w_t·map_t / Σ_t w_t            (linear ramps over the overlaps)
    sites  = merge(every tile's sites)          reported (duplicates within MERGE_PX px merged)

By default (``share_sites=False``) each tile localises its own transmitters, searching up to half
a tile beyond its edges (the localiser's margin), so a site outside a tile still explains that
tile's samples; the blend then averages the neighbours' explanations in the overlaps. The second
pass (``share_sites=True``: every tile gets the merged sites of the whole region within its
margin) was measured and is off: on a 112×160 simulator scene with 80 samples and 64-px tiles the
union of the tiles' sites includes each tile's spurious ones at full power, and the RMSE rose
from 2.6–2.7 dB (independent tiles) to 5.0–5.1 dB (``scripts/region_bench.py seam``,
docs/results/product.md). In diffusion mode there are no sites and one pass runs.

Every sample inside a tile's window is given to that tile; a pixel's weight is highest in the tiles
where it lies deepest, so each sample reaches every tile whose full-weight core is within
``overlap`` pixels of it. A tile with no sample in its window grows its window (up to twice the
tile) until it holds ``min_samples``; all-building tiles are skipped (NaN).

Memory is bounded: the accumulators are the size of the output, at most ``max_in_flight`` tile
results exist at once, and results are accumulated in tile order (so any executor, including
Ray's, gives the same bits as a local run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..data.validate import check_buildings, check_samples
from .plan import Tile, blend_weight, plan_tiles

__all__ = ["RegionResult", "estimate_region", "merge_sites", "run_job"]

EXECUTORS = ("local", "ray")
# Sites from different tiles closer than this are one site (the localiser's own accuracy on
# site-holding windows is a few pixels; RESULTS §0).
MERGE_PX = 12.0
# How far outside a tile a site may stand and still be given to it: the localiser's search
# margin (``LocaliseParams.margin``, × the tile size per side), less a pixel for rounding.
SITE_MARGIN = 0.5


@dataclass
class TileJob:
    """What one tile needs: its window, the samples in it (tile coordinates), known sites."""

    tile: Tile
    r0: int  # the (possibly grown) estimate window within the region
    c0: int
    h: int
    w: int
    samples: np.ndarray  # float64 [n, 3] in window coordinates
    transmitters: np.ndarray | None = None  # [T, 2] in window coordinates


@dataclass
class TileResult:
    index: int
    rss_dbm: np.ndarray  # float32 [tile.h, tile.w] (cropped to the tile)
    uncertainty_db: np.ndarray
    sites: np.ndarray  # float32 [n_sites, 5] in region coordinates
    seconds: float


@dataclass
class RegionResult:
    rss_dbm: np.ndarray  # float32 [H, W], NaN on buildings
    uncertainty_db: np.ndarray  # float32 [H, W]
    transmitters: np.ndarray  # float32 [n, 5]: merged sites (row, col, offset_db, rot_rad, score)
    n_sites: int
    tiles: int
    mode: str
    timings_ms: dict = field(default_factory=dict)


def _windows(b: np.ndarray, s: np.ndarray, tile: Tile, min_samples: int, max_grow: int) -> TileJob | None:
    """The tile's job, its window grown symmetrically until it holds ``min_samples`` samples."""
    H, W = b.shape
    grow = 0
    while True:
        r0, c0 = max(tile.r0 - grow, 0), max(tile.c0 - grow, 0)
        r1, c1 = min(tile.r0 + tile.h + grow, H), min(tile.c0 + tile.w + grow, W)
        inside = (s[:, 0] >= r0) & (s[:, 0] < r1) & (s[:, 1] >= c0) & (s[:, 1] < c1)
        if inside.sum() >= min_samples:
            local = s[inside].copy()
            local[:, 0] -= r0
            local[:, 1] -= c0
            return TileJob(tile, r0, c0, r1 - r0, c1 - c0, local)
        if grow >= max_grow or (r0 == 0 and c0 == 0 and r1 == H and c1 == W):
            return None
        grow = min(max_grow, max(32, 2 * grow))


def _sites_for(job: TileJob, sites: np.ndarray) -> np.ndarray | None:
    if not len(sites):
        return None
    rc = sites[:, :2] - np.array([job.r0, job.c0], dtype=np.float64)
    mr, mc = SITE_MARGIN * job.h - 1, SITE_MARGIN * job.w - 1
    keep = (rc[:, 0] >= -mr) & (rc[:, 0] <= job.h - 1 + mr) & (rc[:, 1] >= -mc) & (rc[:, 1] <= job.w - 1 + mc)
    return rc[keep] if keep.any() else None


def merge_sites(per_tile: list[np.ndarray], merge_px: float = MERGE_PX) -> np.ndarray:
    """One list of sites from every tile's (region-coordinate) sites: a site found by several tiles
    is kept once, at the position of its best-scored (lowest score) finding. Order-independent:
    the input is sorted first."""
    rows = [s for s in per_tile if len(s)]
    if not rows:
        return np.zeros((0, 5), np.float32)
    allsites = np.concatenate(rows).astype(np.float64)
    order = np.lexsort((allsites[:, 1], allsites[:, 0], allsites[:, 4]))  # best score first, ties by position
    kept: list[np.ndarray] = []
    for s in allsites[order]:
        if all(np.hypot(*(s[:2] - k[:2])) > merge_px for k in kept):
            kept.append(s)
    return np.array(kept, dtype=np.float32)


def run_job(estimator, buildings: np.ndarray, job: TileJob, kwargs: dict) -> TileResult:
    """Estimate one tile's window and crop the result to the tile (every executor calls this)."""
    t0 = time.perf_counter()
    window = buildings[job.r0 : job.r0 + job.h, job.c0 : job.c0 + job.w]
    tile_kwargs = dict(kwargs)
    if job.transmitters is not None:
        tile_kwargs["transmitters"] = job.transmitters
    res = estimator.estimate(window, job.samples, **tile_kwargs)
    t = job.tile
    rs, cs = slice(t.r0 - job.r0, t.r0 - job.r0 + t.h), slice(t.c0 - job.c0, t.c0 - job.c0 + t.w)
    sites = np.zeros((0, 5), np.float32)
    if res.transmitters is not None and res.n_sites:
        sites = res.transmitters[: res.n_sites].copy()
        sites[:, 0] += job.r0
        sites[:, 1] += job.c0
    return TileResult(
        t.index,
        res.rss_dbm[rs, cs].copy(),
        res.uncertainty_db[rs, cs].copy(),
        sites,
        time.perf_counter() - t0,
    )


class LocalExecutor:
    """Tiles one after another in this process (memory: one tile result at a time)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def run(self, buildings: np.ndarray, jobs: list[TileJob], kwargs: dict):
        for job in jobs:
            yield run_job(self.estimator, buildings, job, kwargs)

    def close(self) -> None:
        pass


class _Blend:
    """Σ w·map and Σ w over the region (float32: 4 × 64 MB for a 4096² city)."""

    def __init__(self, shape: tuple[int, int], tiles: list[Tile]):
        self.shape, self.tiles = shape, tiles
        self.rss = np.zeros(shape, np.float32)
        self.wsum = np.zeros(shape, np.float32)
        self.unc = np.zeros(shape, np.float32)
        self.uwsum = np.zeros(shape, np.float32)  # σ may be NaN where the map is not (candidates=0)

    def add(self, result: TileResult) -> None:
        t = self.tiles[result.index]
        w = blend_weight(t, self.shape, self.tiles).astype(np.float32)
        rss, unc = result.rss_dbm, result.uncertainty_db
        ok = np.isfinite(rss)
        uok = ok & np.isfinite(unc)
        win = t.window
        self.rss[win] += np.where(ok, w * np.nan_to_num(rss), 0.0).astype(np.float32)
        self.wsum[win] += np.where(ok, w, 0.0).astype(np.float32)
        self.unc[win] += np.where(uok, w * np.nan_to_num(unc), 0.0).astype(np.float32)
        self.uwsum[win] += np.where(uok, w, 0.0).astype(np.float32)

    def result(self, buildings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            rss = self.rss / self.wsum
            unc = self.unc / self.uwsum
        rss[(buildings == 1) | (self.wsum == 0)] = np.nan
        unc[(buildings == 1) | (self.uwsum == 0)] = np.nan
        return rss.astype(np.float32), unc.astype(np.float32)


def _make_executor(estimator, executor, address: str | None, workers: int | None, retries: int):
    if not isinstance(executor, str):
        return executor  # an executor object (e.g. a RayExecutor the caller keeps for many regions)
    if executor == "local":
        return LocalExecutor(estimator)
    if executor == "ray":
        from ..distributed.executor import RayExecutor

        return RayExecutor(estimator, address=address, workers=workers, retries=retries)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")


def estimate_region(
    estimator,
    buildings,
    samples,
    *,
    tile: int = 256,
    overlap: int = 64,
    executor: str = "local",
    address: str | None = None,
    workers: int | None = None,
    share_sites: bool = False,
    min_samples: int = 1,
    retries: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
    **estimate_kwargs,
) -> RegionResult:
    """Estimate a region of any size ``[H, W]`` as overlapping tiles blended without seams.

    ``estimator``: a :class:`~wifidiff_fast.RadioMapEstimator`. ``tile``/``overlap``: tile side
    and overlap in pixels (``overlap`` is also how far a sample's influence reaches into the
    neighbouring tile's core). ``executor``: ``"local"`` (this process) or ``"ray"`` (one actor
    per worker, each holding a copy of the estimator; ``address`` of a running cluster, or a local
    one is started; ``workers`` actors, default: the cluster's CPUs). ``share_sites`` (physics
    mode): run a second pass with the region's merged transmitter sites (measured worse; see
    the module notes). ``progress(stage,
    done, total)`` is called after every tile. Other keyword arguments go to
    ``estimator.estimate`` (``mode``, ``seed``, ``freq_mhz``, ``candidates``, ...);
    ``transmitters`` are region coordinates and skip the first pass. ``executor`` may also be an
    executor object (:class:`~wifidiff_fast.distributed.RayExecutor`) that the caller keeps open
    across regions; it is not closed here.
    """
    b = check_buildings(buildings)
    s = check_samples(samples, b, rss_range=(estimator.p_min, estimator.p_max))
    tiles = plan_tiles(b.shape, tile, overlap)
    mode = estimate_kwargs.get("mode") or estimator.mode
    known = estimate_kwargs.pop("transmitters", None)
    if known is not None:
        known = np.asarray(known, dtype=np.float64).reshape(-1, 2)
    jobs = []
    for t in tiles:
        if b[t.window].all():
            continue  # all buildings: nothing to estimate, NaN
        job = _windows(b, s, t, min_samples, max_grow=tile // 2)
        if job is None:
            raise ValueError(
                f"tile {t.index} (rows {t.r0}..{t.r0 + t.h - 1}, cols {t.c0}..{t.c0 + t.w - 1}) has fewer than "
                f"{min_samples} sample(s) within {tile // 2} px of it; add samples there or use a larger tile"
            )
        jobs.append(job)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    runner = _make_executor(estimator, executor, address, workers, retries)
    try:
        sites = np.zeros((0, 5), np.float32)
        if mode == "physics" and (known is not None or share_sites):
            if known is not None:
                sites = np.column_stack([known, np.zeros((len(known), 3))]).astype(np.float32)
            else:
                t0 = time.perf_counter()
                found = []
                for done, res in enumerate(runner.run(b, jobs, estimate_kwargs), start=1):
                    found.append(res.sites)
                    if progress:
                        progress("localise", done, len(jobs))
                sites = merge_sites(found)
                timings["localise_pass"] = (time.perf_counter() - t0) * 1e3
            for job in jobs:
                job.transmitters = _sites_for(job, sites)
        t0 = time.perf_counter()
        blend = _Blend(b.shape, tiles)
        found = []
        for done, res in enumerate(runner.run(b, jobs, estimate_kwargs), start=1):
            blend.add(res)
            found.append(res.sites)
            if progress:
                progress("map", done, len(jobs))
        timings["map_pass"] = (time.perf_counter() - t0) * 1e3
    finally:
        if isinstance(executor, str):
            runner.close()
    if not len(sites):
        sites = merge_sites(found)
    rss, unc = blend.result(b)
    rows, cols = s[:, 0].astype(np.int64), s[:, 1].astype(np.int64)
    rss[rows, cols] = s[:, 2]  # real measurements always win
    timings["total"] = (time.perf_counter() - t_start) * 1e3
    return RegionResult(
        rss, unc, sites, len(sites), len(jobs), mode, {k: round(v, 3) for k, v in timings.items()}
    )
