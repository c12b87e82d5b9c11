"""Ray-traced training maps with Sionna RT (optional extra ``raytrace``).

Building rasters are extruded into boxes (one watertight mesh on the pixel grid, a height per
building, concrete walls over a ground plane), transmitter sites stand outside buildings on masts,
and ``RadioMapSolver`` (LOS, specular reflection, refraction through walls, first-order wedge
diffraction; depth 3, 10⁷ rays) computes the path gain on a ``size × size`` grid of ``pixel_m``
cells at receiver height. RSS in dBm is ``tx power + path gain`` summed over every sector and site;
a light normalised smoothing (σ = 1 px, over non-building cells, in linear power) removes
Monte-Carlo speckle far from the sites; cells that no path reaches are clipped to a floor
(``units.P_MIN_DBM`` = −130 dBm) and building pixels are NaN.

BRAT mimicry (see ``shared/data/brat/README.md``): each site carries 3 sectors (azimuths
θ₀ + 0/120/240°, 10° mechanical downtilt, 3GPP TR 38.901 element, 65° beamwidth, 8 dBi) at
46 dBm each, on 1–3 sites per map, in the 5 BRAT bands. The three sectors are traced as one
transmitter whose pattern is their power sum (exact for incoherent sectors, 3× the rays per
sector). θ₀ is random per site (BRAT's azimuth convention is unknown), and the TR 38.901 element
stands in for BRAT's Kathrein 720842A2, which Sionna does not have.

Building sources:

* ``procedural``: ``wifidiff_fast.data.layouts.random_layouts`` (the simulator's city layouts);
* ``brat``: random crops (with random rot90/flip) of BRAT **region 1** building footprints only —
  region 2 is the validation region and never feeds training data;
* ``mixed``: each map picks one of the two at random.

The scene covers the map plus a ``margin`` of context on every side, so sites may also stand just
outside the map (``tx_rc`` then lies outside ``[0, size)``) and buildings beyond the edge still
shadow it.

Corpus (``--out``): one ``rt_{seed}_{index:05d}.npz`` per map with ``rss_dbm`` float32 [H,W] (NaN on
buildings), ``buildings`` uint8 [H,W], ``tx_rc`` float32 [n_sites,2], ``freq_mhz`` float32,
``source`` str (``procedural`` | ``brat1``), plus ``tx_z_m`` float32 [n_sites] (mast-top heights) and a
``manifest.json`` (config, count done, timings). Every map is a pure, bit-reproducible function of
``(seed, index, config)``, so a rerun skips the files that exist and resumes where the last run
stopped, and the files do not depend on the number of worker processes.

Reproducibility: Dr.Jit runs single-threaded here (throughput comes from worker processes). With
several threads, Sionna's diffraction-wedge hash table is filled in a racy order and the same map
differed run to run by tens of dB in shadows. The table is also enlarged (``wedge_table``): the
default 10 000 slots silently drop most of the tens of thousands of edges of a 320² city mesh.

Setup: ``bash scripts/setup_raytrace.sh`` (installs Debian's ``libllvm19`` and ``sionna-rt``).
Dr.Jit crashes with the LLVM 15 of Debian 12, so unless ``DRJIT_LIBLLVM_PATH`` is already set this
module points it at Debian's libLLVM 19 before importing Sionna.

CLI::

    python -m wifidiff_fast.data.raytrace --out corpus/raytrace --n 200 --size 256 --seed 0 \\
        [--source procedural|brat|mixed] [--rays 1e7] [--batch 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .units import P_MIN_DBM

# Debian 12 (bookworm) package libllvm19; the first one that exists is used.
LLVM19_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libLLVM-19.so",
    "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1",
    "/usr/lib/aarch64-linux-gnu/libLLVM-19.so",
    "/usr/lib/aarch64-linux-gnu/libLLVM.so.19.1",
    "/usr/lib/llvm-19/lib/libLLVM-19.so",
    "/usr/lib/llvm-19/lib/libLLVM.so.1",
)
BRAT_BANDS_MHZ = (1750.0, 2750.0, 3750.0, 4750.0, 5750.0)
# Region 2 is the validation region: it must never be used to make training data.
BRAT_TRAIN_REGION = 1
SOURCES = ("procedural", "brat", "mixed")
SETUP_HINT = "install the optional extra with `bash scripts/setup_raytrace.sh` (Debian libllvm19 + sionna-rt)"

_RT = None  # the imported sionna.rt module, once loaded


# ---------------------------------------------------------------------------------------------
# Sionna import (lazy: the rest of the package never needs it)
# ---------------------------------------------------------------------------------------------

def llvm19_path() -> str | None:
    """Debian's libLLVM 19, or ``None`` when it is not installed."""
    for path in LLVM19_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


def _ensure_llvm_env() -> None:
    """Point Dr.Jit at libLLVM 19 unless the user already chose a library."""
    if not os.environ.get("DRJIT_LIBLLVM_PATH"):
        path = llvm19_path()
        if path is not None:
            os.environ["DRJIT_LIBLLVM_PATH"] = path


def import_sionna():
    """Import ``sionna.rt`` on Dr.Jit's LLVM (CPU) backend; ImportError with a setup hint if absent."""
    global _RT
    if _RT is not None:
        return _RT
    _ensure_llvm_env()
    try:
        import mitsuba as mi

        if mi.variant() is None:
            mi.set_variant("llvm_ad_mono_polarized")
        import drjit as dr
        import sionna.rt as rt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(f"sionna-rt is not importable ({exc}); {SETUP_HINT}") from exc
    # Single-threaded Dr.Jit: with several threads the float atomics, and above all the race for
    # the diffraction-wedge hash slots, make maps differ run to run (by tens of dB in shadows).
    # One thread is bit-reproducible; `generate` gets its throughput from worker processes.
    dr.set_thread_count(1)
    _RT = rt
    return rt


def sionna_available() -> tuple[bool, str]:
    """``(True, version)`` when Sionna RT imports, else ``(False, reason)``."""
    try:
        rt = import_sionna()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, str(exc)
    return True, str(getattr(rt, "__version__", "?"))


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

@dataclass
class RTConfig:
    size: int = 256                    # map side [px]
    pixel_m: float = 2.0               # cell size [m]
    margin: int = 32                   # context around the map [px] (buildings and sites)
    source: str = "procedural"         # procedural | brat | mixed
    rays: int = 10_000_000             # rays per map, shared by all sectors
    max_depth: int = 3
    diffraction: bool = True
    refraction: bool = True
    building_height_m: tuple[float, float] = (10.0, 35.0)
    rx_height_m: float = 1.5
    mast_height_m: tuple[float, float] = (10.0, 30.0)   # above ground, mast top
    n_sites: tuple[int, int] = (1, 3)
    sectors: int = 3                   # 3 → BRAT-like sectors, 1 → one isotropic antenna
    smooth_px: float = 1.0             # σ of the normalised Monte-Carlo smoothing [px]; 0 = off
    wedge_table: int = 1 << 20         # diffraction-wedge hash slots (Sionna's default: 10 000)
    downtilt_deg: float = 10.0
    tx_power_dbm: float = 46.0         # per sector
    freqs_mhz: tuple[float, ...] = BRAT_BANDS_MHZ
    floor_dbm: float = P_MIN_DBM
    building_material: str = "concrete"
    ground_material: str = "medium_dry_ground"
    outside_site_prob: float = 0.2     # chance that a site stands in the margin, off the map

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.size < 8 or self.margin < 0 or self.pixel_m <= 0:
            raise ValueError("size must be >= 8, margin >= 0 and pixel_m > 0")
        if self.sectors not in (1, 3):
            raise ValueError("sectors must be 1 (isotropic) or 3 (BRAT-like)")
        self.building_height_m = tuple(float(v) for v in self.building_height_m)
        self.mast_height_m = tuple(float(v) for v in self.mast_height_m)
        self.n_sites = tuple(int(v) for v in self.n_sites)
        self.freqs_mhz = tuple(float(v) for v in self.freqs_mhz)

    @property
    def extent(self) -> int:
        return self.size + 2 * self.margin

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Geometry (pure numpy: testable without Sionna)
# ---------------------------------------------------------------------------------------------

def building_heights(buildings: np.ndarray, rng: np.random.Generator,
                     height_range: tuple[float, float]) -> np.ndarray:
    """One random height per 8-connected building, 0 on the ground. float32 [H, W]."""
    from scipy import ndimage

    labels, count = ndimage.label(buildings.astype(bool), structure=np.ones((3, 3), dtype=bool))
    per_building = rng.uniform(height_range[0], height_range[1], size=count + 1)
    per_building[0] = 0.0
    # 0.5 m steps: fewer distinct vertex heights, and a wall never degenerates to a sliver.
    per_building = np.round(per_building * 2.0) / 2.0
    return per_building[labels].astype(np.float32)


def extrude_mesh(heights: np.ndarray, pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the height raster: a roof quad per building pixel, a wall quad per pixel
    edge where the height drops. Vertices sit on the pixel-corner grid and are shared, so the mesh
    is watertight above ground and Sionna finds its roof/wall wedges for diffraction (coplanar
    neighbours are not silhouette edges, so the pixel tessellation adds no spurious wedges).
    Normals point outwards. Coordinates: x east = (col − W/2)·pixel, y north = (H/2 − row)·pixel,
    z up; pixel (r, c) covers x ∈ [c, c+1), y ∈ (H/2 − r − 1, H/2 − r] in pixel units.

    Returns ``vertices float32 [n, 3]`` and ``faces uint32 [m, 3]`` (empty when no building).
    """
    h = np.asarray(heights, dtype=np.float32)
    H, W = h.shape
    rr, cc = np.nonzero(h > 0)
    z = h[rr, cc]
    quads = []  # each [k, 4, 3] of (grid row, grid col, z), counter-clockwise seen from outside
    quads.append(np.stack([
        np.stack([rr + 1, cc, z], -1), np.stack([rr + 1, cc + 1, z], -1),
        np.stack([rr, cc + 1, z], -1), np.stack([rr, cc, z], -1)], 1))
    padded = np.pad(h, 1)
    # (d_row, d_col, edge start, edge end): start→end × z gives the outward normal.
    walls = (
        (-1, 0, (0, 1), (0, 0)),   # north edge, row r, normal +y
        (1, 0, (1, 0), (1, 1)),    # south edge, row r+1, normal −y
        (0, -1, (0, 0), (1, 0)),   # west edge, col c, normal −x
        (0, 1, (1, 1), (0, 1)),    # east edge, col c+1, normal +x
    )
    for d_r, d_c, (a_r, a_c), (b_r, b_c) in walls:
        hn = padded[rr + 1 + d_r, cc + 1 + d_c]
        m = hn < z
        r0, c0, lo, hi = rr[m], cc[m], hn[m], z[m]
        quads.append(np.stack([
            np.stack([r0 + a_r, c0 + a_c, lo], -1), np.stack([r0 + b_r, c0 + b_c, lo], -1),
            np.stack([r0 + b_r, c0 + b_c, hi], -1), np.stack([r0 + a_r, c0 + a_c, hi], -1)], 1))
    q = np.concatenate(quads, 0).astype(np.float64)  # [k, 4, 3]
    if len(q) == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32)
    keys, inverse = np.unique(q.reshape(-1, 3), axis=0, return_inverse=True)
    idx = inverse.reshape(-1, 4)
    faces = np.concatenate([idx[:, [0, 1, 2]], idx[:, [0, 2, 3]]], 0).astype(np.uint32)
    verts = np.stack([(keys[:, 1] - W / 2.0) * pixel_m, (H / 2.0 - keys[:, 0]) * pixel_m, keys[:, 2]], -1)
    return verts.astype(np.float32), faces


def pixel_to_xy(rc: np.ndarray, shape: tuple[int, int], pixel_m: float) -> np.ndarray:
    """Pixel (row, col) — centres at +0.5 — of a grid of ``shape`` → world (x, y) [m]."""
    rc = np.asarray(rc, dtype=np.float64).reshape(-1, 2)
    H, W = shape
    return np.stack([(rc[:, 1] + 0.5 - W / 2.0) * pixel_m, (H / 2.0 - rc[:, 0] - 0.5) * pixel_m], -1)


# ---------------------------------------------------------------------------------------------
# Scene sampling
# ---------------------------------------------------------------------------------------------

def _map_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), 0x5A7])


_BRAT_CACHE: dict[str, np.ndarray] = {}


def _brat_footprints(data_dir: str | Path | None = None) -> np.ndarray:
    key = str(data_dir)
    if key not in _BRAT_CACHE:
        from .loaders import load_brat_region

        _BRAT_CACHE[key] = load_brat_region(BRAT_TRAIN_REGION, data_dir).buildings.astype(np.uint8)
    return _BRAT_CACHE[key]


def sample_buildings(source: str, extent: int, rng: np.random.Generator, seed: int, index: int,
                     data_dir: str | Path | None = None) -> tuple[np.ndarray, str]:
    """Building raster of ``extent × extent`` (map + margins) and its source tag."""
    if source == "mixed":
        source = "procedural" if rng.random() < 0.5 else "brat"
    if source == "procedural":
        import torch

        from .layouts import random_layouts

        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))
        layout = random_layouts(1, extent, generator=gen, device="cpu")
        return np.asarray(layout[0].cpu().numpy() > 0, dtype=np.uint8), "procedural"
    if source == "brat":
        region = _brat_footprints(data_dir)
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        region = np.rot90(region, k)
        if flip:
            region = region[:, ::-1]
        H, W = region.shape
        if H < extent or W < extent:
            raise ValueError(f"BRAT region {BRAT_TRAIN_REGION} ({H}x{W}) is smaller than {extent}x{extent}")
        r, c = int(rng.integers(H - extent + 1)), int(rng.integers(W - extent + 1))
        return np.ascontiguousarray(region[r:r + extent, c:c + extent]).astype(np.uint8), "brat1"
    raise ValueError(f"unknown source {source!r}")


def sample_sites(buildings_ext: np.ndarray, cfg: RTConfig, rng: np.random.Generator) -> np.ndarray:
    """Site pixels (row, col) in the extended grid, on the ground; the first one inside the map."""
    m, S = cfg.margin, cfg.size
    n = int(rng.integers(cfg.n_sites[0], cfg.n_sites[1] + 1))
    free = buildings_ext == 0
    inside = np.zeros_like(free)
    inside[m:m + S, m:m + S] = True
    # Keep a 2-px clearance from the scene border.
    pool_all = free.copy()
    pool_all[:2] = pool_all[-2:] = False
    pool_all[:, :2] = pool_all[:, -2:] = False
    pool_in = np.argwhere(pool_all & inside)
    pool_out = np.argwhere(pool_all & ~inside)
    if len(pool_in) == 0:
        raise ValueError("no ground pixel inside the map for a transmitter")
    sites = []
    for i in range(n):
        outside = i > 0 and len(pool_out) > 0 and rng.random() < cfg.outside_site_prob
        pool = pool_out if outside else pool_in
        sites.append(pool[int(rng.integers(len(pool)))])
    return np.asarray(sites, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Ray tracing
# ---------------------------------------------------------------------------------------------

def _mi_mesh(name: str, verts: np.ndarray, faces: np.ndarray):
    import drjit as dr
    import mitsuba as mi

    mesh = mi.Mesh(name, vertex_count=len(verts), face_count=len(faces),
                   has_vertex_normals=False, has_vertex_texcoords=False)
    params = mi.traverse(mesh)
    params["vertex_positions"] = dr.ravel(mi.Point3f(verts[:, 0], verts[:, 1], verts[:, 2]))
    params["faces"] = dr.ravel(mi.Vector3u(faces[:, 0], faces[:, 1], faces[:, 2]))
    params.update()
    return mesh


_REGISTERED_PATTERNS: set[str] = set()


def sector_site_pattern(downtilt_deg: float) -> str:
    """Register (once) and name a Sionna antenna pattern that is the power sum of 3 TR 38.901
    sectors at azimuths 0/120/240° with ``downtilt_deg`` mechanical downtilt.

    The sectors of a site carry independent signals, so the RSS is the sum of their powers. For
    ray-traced paths ``Σ_k P·G_k(dir)·|path|² = P·(Σ_k G_k(dir))·|path|²``, so one transmitter
    with the summed power pattern gives exactly the sum of the 3 sector maps, at a third of the
    cost (or with 3× the rays per sector for the same cost).
    """
    name = f"wifidiff_3sector_tilt{downtilt_deg:g}"
    if name in _REGISTERED_PATTERNS:
        return name
    rt = import_sionna()
    import drjit as dr
    import mitsuba as mi
    from sionna.rt.antenna_pattern import PolarizedAntennaPattern, v_tr38901_pattern

    ct, st = float(np.cos(np.deg2rad(downtilt_deg))), float(np.sin(np.deg2rad(downtilt_deg)))

    def v_pattern(theta, phi):
        sin_t, cos_t = dr.sincos(theta)
        total = dr.zeros(mi.Float, dr.width(theta))
        for k in range(3):
            # Direction in sector k's frame: undo its yaw (φ − a_k), then its downtilt (R_y(−t)).
            sp, cp = dr.sincos(phi - float(np.deg2rad(120.0 * k)))
            x, y, z = sin_t * cp, sin_t * sp, cos_t
            x2, z2 = ct * x - st * z, st * x + ct * z
            c = v_tr38901_pattern(dr.safe_acos(dr.clip(z2, -1.0, 1.0)), dr.atan2(y, x2))
            total += dr.square(c.real) + dr.square(c.imag)
        return mi.Complex2f(dr.sqrt(total), 0.0)

    def factory(*, polarization, polarization_model="tr38901_2"):
        return PolarizedAntennaPattern(v_pattern=v_pattern, polarization=polarization,
                                       polarization_model=polarization_model)

    rt.register_antenna_pattern(name, factory)
    _REGISTERED_PATTERNS.add(name)
    return name


def smooth_power(power_w: np.ndarray, free: np.ndarray, sigma_px: float) -> np.ndarray:
    """Normalised Gaussian smoothing of linear power over the non-building cells.

    Each cell of Sionna's map is an unbiased Monte-Carlo estimate of its mean power, so their
    local average is an unbiased estimate of the smoothed field with far less variance: this
    removes the speckle (isolated empty cells between lit ones) where few rays land per cell,
    far from the sites. Buildings are excluded from the average (they do not leak power into
    streets). ``sigma_px <= 0`` returns the input unchanged.
    """
    if sigma_px <= 0:
        return power_w
    from scipy.ndimage import gaussian_filter

    w = free.astype(np.float64)
    num = gaussian_filter(power_w * w, sigma_px, mode="constant", truncate=3.0)
    den = gaussian_filter(w, sigma_px, mode="constant", truncate=3.0)
    out = np.where(den > 1e-6, num / np.maximum(den, 1e-12), 0.0)
    return np.where(free, out, power_w)


def trace_map(heights_ext: np.ndarray, sites_rc: np.ndarray, site_z: np.ndarray, freq_mhz: float,
              cfg: RTConfig, seed: int, azimuths_deg: np.ndarray | None = None) -> np.ndarray:
    """RSS [dBm] on the central ``size × size`` window of the extended height raster.

    ``sites_rc`` are (row, col) pixels of the extended grid, ``site_z`` antenna heights [m],
    ``azimuths_deg`` the first sector's azimuth per site (counter-clockwise from east). Cells with
    no path (or below the floor) are set to ``cfg.floor_dbm``; buildings are NOT masked here.
    """
    rt = import_sionna()
    import mitsuba as mi

    E = heights_ext.shape[0]
    S, m, p = cfg.size, cfg.margin, cfg.pixel_m
    scene = rt.Scene()
    objects = []
    verts, faces = extrude_mesh(heights_ext, p)
    if len(faces):
        mat = rt.ITURadioMaterial("walls-material", cfg.building_material, thickness=0.3)
        objects.append(rt.SceneObject(mi_mesh=_mi_mesh("blocks", verts, faces), name="blocks",
                                      radio_material=mat))
    half = 0.5 * E * p + 50.0
    g_v = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], np.float32)
    g_f = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
    g_mat = rt.ITURadioMaterial("ground-material", cfg.ground_material, thickness=1.0)
    objects.append(rt.SceneObject(mi_mesh=_mi_mesh("terrain", g_v, g_f), name="terrain",
                                  radio_material=g_mat))
    scene.edit(add=objects)
    scene.frequency = float(freq_mhz) * 1e6
    pattern = sector_site_pattern(cfg.downtilt_deg) if cfg.sectors == 3 else "iso"
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern=pattern, polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")

    xy = pixel_to_xy(sites_rc, (E, E), p)
    if azimuths_deg is None:
        azimuths_deg = np.zeros(len(sites_rc))
    for i, ((x, y), z) in enumerate(zip(xy, site_z)):
        yaw = float(np.deg2rad(azimuths_deg[i])) if cfg.sectors == 3 else 0.0
        scene.add(rt.Transmitter(f"site{i}", position=mi.Point3f(float(x), float(y), float(z)),
                                 orientation=mi.Point3f(yaw, 0.0, 0.0),
                                 power_dbm=float(cfg.tx_power_dbm)))

    # The map window is centred in the extended grid, so its centre is the world origin.
    # Sionna keeps first-order diffraction wedges in a fixed hash table (10 000 slots by default)
    # and silently drops an edge whose slot is taken. The pixel-grid mesh has tens of thousands of
    # roof/wall edge segments, so the default loses most wedges; 2^20 slots lose a few percent.
    # The solver reads the size from its class, hence the class attribute.
    rt.RadioMapSolver._WEDGE_INTERSECTIONS_SIZE = int(cfg.wedge_table)
    solver = rt.RadioMapSolver()
    rm = solver(scene, center=mi.Point3f(0.0, 0.0, cfg.rx_height_m), orientation=mi.Point3f(0, 0, 0),
                size=mi.Point2f(S * p, S * p), cell_size=mi.Point2f(p, p),
                samples_per_tx=max(1, int(cfg.rays) // len(site_z)), max_depth=int(cfg.max_depth),
                los=True, specular_reflection=True, diffuse_reflection=False,
                refraction=bool(cfg.refraction), diffraction=bool(cfg.diffraction),
                seed=int(seed) % (2**31))
    rss_w = np.asarray(rm.rss.numpy(), dtype=np.float64).sum(0)  # [S(y up), S]
    if rss_w.shape != (S, S):
        raise RuntimeError(f"Sionna returned a {rss_w.shape} map, expected {(S, S)}")
    rss_w = rss_w[::-1]  # cell row 0 is the southern edge; our row 0 is the northern one
    free = heights_ext[m:m + S, m:m + S] <= 0
    rss_w = smooth_power(rss_w, free, cfg.smooth_px)
    with np.errstate(divide="ignore"):
        dbm = 10.0 * np.log10(rss_w) + 30.0
    dbm = np.where(np.isfinite(dbm), dbm, cfg.floor_dbm)
    return np.maximum(dbm, cfg.floor_dbm).astype(np.float32)


def make_map(seed: int, index: int, cfg: RTConfig, data_dir: str | Path | None = None) -> dict:
    """One corpus record (the ``.npz`` payload), a pure function of ``(seed, index, cfg)``."""
    rng = _map_rng(seed, index)
    E, m, S = cfg.extent, cfg.margin, cfg.size
    buildings_ext, tag = sample_buildings(cfg.source, E, rng, seed, index, data_dir)
    heights = building_heights(buildings_ext, rng, cfg.building_height_m)
    sites = sample_sites(buildings_ext, cfg, rng)
    site_z = rng.uniform(cfg.mast_height_m[0], cfg.mast_height_m[1], size=len(sites))
    azimuths = rng.uniform(0.0, 120.0, size=len(sites))
    freq = float(cfg.freqs_mhz[int(rng.integers(len(cfg.freqs_mhz)))])
    solver_seed = int(rng.integers(2**31 - 1))
    rss = trace_map(heights, sites, site_z, freq, cfg, solver_seed, azimuths)
    buildings = buildings_ext[m:m + S, m:m + S].astype(np.uint8)
    rss = np.where(buildings == 1, np.nan, rss).astype(np.float32)
    return {
        "rss_dbm": rss,
        "buildings": buildings,
        "tx_rc": (sites - m).astype(np.float32),
        "tx_z_m": site_z.astype(np.float32),
        "freq_mhz": np.float32(freq),
        "source": np.str_(tag),
    }


# ---------------------------------------------------------------------------------------------
# Corpus generation (resumable, batched)
# ---------------------------------------------------------------------------------------------

def map_path(out: Path, seed: int, index: int) -> Path:
    return out / f"rt_{seed}_{index:05d}.npz"


def _write_npz(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **record)
    os.replace(tmp, path)


def _write_manifest(out: Path, cfg: RTConfig, seed: int, n: int, sionna_version: str,
                    stats: dict) -> None:
    done = sorted(int(p.stem.split("_")[-1]) for p in out.glob(f"rt_{seed}_*.npz")
                  if not p.name.endswith(".tmp.npz"))
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
        stats = {**stats, **{k: v for k, v in runs.get(str(seed), {}).items()
                            if k in ("seconds_per_map", "worker_seconds_per_map", "maps_this_run", "workers")}}
    runs[str(seed)] = {
        "config": cfg.to_json(),
        "n_requested": int(n),
        "count_done": int(sum(1 for i in done if i < n)),
        "indices_done": len(done),
        **stats,
    }
    manifest.update({
        "format": "wifidiff_fast raytrace corpus v1",
        "generator": "wifidiff_fast.data.raytrace (Sionna RT RadioMapSolver)",
        "sionna_rt": sionna_version,
        "file_pattern": "rt_{seed}_{index:05d}.npz",
        "keys": {"rss_dbm": "float32 [H,W] dBm, NaN on buildings, floor-clipped",
                 "buildings": "uint8 [H,W] 1=building", "tx_rc": "float32 [n_sites,2] (row,col)",
                 "tx_z_m": "float32 [n_sites] antenna height m", "freq_mhz": "float32",
                 "source": "str procedural|brat1"},
        "count_done": int(sum(r.get("count_done", 0) for r in runs.values())),
        "runs": runs,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
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


def generate(out: str | Path, n: int, cfg: RTConfig, seed: int = 0, batch: int = 8,
             workers: int = 1, progress: bool = True, data_dir: str | Path | None = None) -> dict:
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
            raise ValueError(f"{out} already holds seed {seed} made with another config; use another "
                             f"--out or --seed (recorded: {prior.get('config')})")
    todo = [i for i in range(n) if not map_path(out, seed, i).exists()]
    jobs = [(str(out), int(seed), i, cfg.to_json(), None if data_dir is None else str(data_dir))
            for i in todo]
    workers = max(1, min(int(workers), len(jobs) or 1))
    # seconds_per_map: wall clock per map for the whole run (what throughput to expect);
    # worker_seconds_per_map: wall clock of one map inside one worker.
    stats = {"seconds_per_map": None, "worker_seconds_per_map": None, "maps_this_run": 0,
             "workers": workers}
    t_start, cpu_sum, made = time.perf_counter(), 0.0, 0
    bar = tqdm(total=n, initial=n - len(todo), unit="map", disable=not progress,
               desc=f"raytrace {cfg.source}", dynamic_ncols=True)

    def done(seconds: float) -> None:
        nonlocal made, cpu_sum
        made += 1
        cpu_sum += seconds
        wall = (time.perf_counter() - t_start) / made
        bar.update(1)
        bar.set_postfix(s_per_map=f"{wall:.2f}")
        stats.update(seconds_per_map=round(wall, 3), worker_seconds_per_map=round(cpu_sum / made, 3),
                     maps_this_run=made)
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
    return {"out": str(out), "made": made, "skipped": n - len(todo), "workers": workers,
            "seconds_per_map": stats["seconds_per_map"],
            "worker_seconds_per_map": stats.get("worker_seconds_per_map")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wifidiff_fast.data.raytrace",
                                 description="Generate a Sionna RT radio-map corpus (resumable).")
    ap.add_argument("--out", required=True, help="output folder (e.g. corpus/raytrace)")
    ap.add_argument("--n", type=int, default=200, help="number of maps (indices 0..n-1)")
    ap.add_argument("--size", type=int, default=256, help="map side in pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", choices=SOURCES, default="procedural")
    ap.add_argument("--rays", type=float, default=1e7, help="rays per map (all sectors together)")
    ap.add_argument("--depth", type=int, default=3, help="max interaction depth")
    ap.add_argument("--pixel-m", type=float, default=2.0)
    ap.add_argument("--margin", type=int, default=32, help="context around the map [px]")
    ap.add_argument("--sectors", type=int, choices=(1, 3), default=3,
                    help="3: BRAT-like tr38901 sectors; 1: one isotropic antenna per site")
    ap.add_argument("--no-diffraction", action="store_true")
    ap.add_argument("--batch", type=int, default=8, help="maps between manifest updates")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes, one Dr.Jit thread each (default: min(2, cores))")
    ap.add_argument("--data-dir", default=None, help="folder holding brat/ (default: WIFIDIFF_DATA_DIR)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("--n must be >= 0")
    cfg = RTConfig(size=args.size, pixel_m=args.pixel_m, margin=args.margin, source=args.source,
                   rays=int(args.rays), max_depth=args.depth, diffraction=not args.no_diffraction,
                   sectors=args.sectors)
    try:
        summary = generate(args.out, args.n, cfg, seed=args.seed, batch=args.batch,
                           workers=args.workers, progress=not args.no_progress,
                           data_dir=args.data_dir)
    except (ImportError, ValueError, FileNotFoundError) as exc:
        print(f"raytrace: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
