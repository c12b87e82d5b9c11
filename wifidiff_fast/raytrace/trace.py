"""Tracing one map with Sionna RT's ``RadioMapSolver``: the mesh and materials, the three-sector
site pattern, the solve, and the normalised Monte-Carlo smoothing."""

from __future__ import annotations

import numpy as np

from .backend import import_sionna
from .config import RTConfig
from .scene import extrude_mesh, pixel_to_xy


def _mi_mesh(name: str, verts: np.ndarray, faces: np.ndarray):
    import drjit as dr
    import mitsuba as mi

    mesh = mi.Mesh(
        name,
        vertex_count=len(verts),
        face_count=len(faces),
        has_vertex_normals=False,
        has_vertex_texcoords=False,
    )
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
        return PolarizedAntennaPattern(
            v_pattern=v_pattern, polarization=polarization, polarization_model=polarization_model
        )

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


def trace_map(
    heights_ext: np.ndarray,
    sites_rc: np.ndarray,
    site_z: np.ndarray,
    freq_mhz: float,
    cfg: RTConfig,
    seed: int,
    azimuths_deg: np.ndarray | None = None,
) -> np.ndarray:
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
        objects.append(
            rt.SceneObject(mi_mesh=_mi_mesh("blocks", verts, faces), name="blocks", radio_material=mat)
        )
    half = 0.5 * E * p + 50.0
    g_v = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], np.float32)
    g_f = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
    g_mat = rt.ITURadioMaterial("ground-material", cfg.ground_material, thickness=1.0)
    objects.append(
        rt.SceneObject(mi_mesh=_mi_mesh("terrain", g_v, g_f), name="terrain", radio_material=g_mat)
    )
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
        scene.add(
            rt.Transmitter(
                f"site{i}",
                position=mi.Point3f(float(x), float(y), float(z)),
                orientation=mi.Point3f(yaw, 0.0, 0.0),
                power_dbm=float(cfg.tx_power_dbm),
            )
        )

    # The map window is centred in the extended grid, so its centre is the world origin.
    # Sionna keeps first-order diffraction wedges in a fixed hash table (10 000 slots by default)
    # and silently drops an edge whose slot is taken. The pixel-grid mesh has tens of thousands of
    # roof/wall edge segments, so the default loses most wedges; 2^20 slots lose a few percent.
    # The solver reads the size from its class, hence the class attribute.
    rt.RadioMapSolver._WEDGE_INTERSECTIONS_SIZE = int(cfg.wedge_table)
    solver = rt.RadioMapSolver()
    rm = solver(
        scene,
        center=mi.Point3f(0.0, 0.0, cfg.rx_height_m),
        orientation=mi.Point3f(0, 0, 0),
        size=mi.Point2f(S * p, S * p),
        cell_size=mi.Point2f(p, p),
        samples_per_tx=max(1, int(cfg.rays) // len(site_z)),
        max_depth=int(cfg.max_depth),
        los=True,
        specular_reflection=True,
        diffuse_reflection=False,
        refraction=bool(cfg.refraction),
        diffraction=bool(cfg.diffraction),
        seed=int(seed) % (2**31),
    )
    rss_w = np.asarray(rm.rss.numpy(), dtype=np.float64).sum(0)  # [S(y up), S]
    if rss_w.shape != (S, S):
        raise RuntimeError(f"Sionna returned a {rss_w.shape} map, expected {(S, S)}")
    rss_w = rss_w[::-1]  # cell row 0 is the southern edge; our row 0 is the northern one
    free = heights_ext[m : m + S, m : m + S] <= 0
    rss_w = smooth_power(rss_w, free, cfg.smooth_px)
    with np.errstate(divide="ignore"):
        dbm = 10.0 * np.log10(rss_w) + 30.0
    dbm = np.where(np.isfinite(dbm), dbm, cfg.floor_dbm)
    return np.maximum(dbm, cfg.floor_dbm).astype(np.float32)
