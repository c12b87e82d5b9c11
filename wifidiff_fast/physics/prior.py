"""The propagation prior: a BRAT-faithful, building-aware physics model with a few parameters.

For a site at ``x_k`` and a receiver at ``q`` (pixel units), with ``d = |q − x_k|`` and the ray cast
of :mod:`.raycast` giving ``ℓ`` (building pixels crossed) and ``w`` (walls entered), the site's
received power in dBm is

    P_k(q) = P_ref + ΔP_k − γ_f·log10(f / 1750 MHz) − 10·n·log10(√(d² + h²))
             + G(az, θ)  − L_obs,
    θ      = atan2(h, d)                                  (depression angle, the mast is h px up)
    L_obs  = L_cap · (1 − exp(−(a_w·w + a_ℓ·ℓ)·(f / 1750)^κ / L_cap)) · D / (D + e)

(soft-capped; ``e`` is the distance behind the last building on the ray, so diffraction fills the
shadow in over ``D`` pixels) with ``G`` the three-sector pattern of :mod:`.antenna` (``G = 0`` for
an omni site) and ``ΔP_k``
the site's power offset (0 for BRAT's identical 46 dBm sites; fitted per hypothesis at inference).
Several sites add up in linear power: ``P(q) = 10·log10 Σ_k 10^{P_k(q)/10}``.

Version 3 adds the correction curves of :mod:`.curves` to each site's power, ``P_k + C_k``: one
smooth 1-D curve per geometric quantity (distance, angle off the sector boresight, walls,
building length, distance behind the last building), fitted after the scalars. A version 2 block
(no curves) still loads and predicts exactly as before.

:class:`PropagationParams` holds the scalars (calibrated by :mod:`.calibrate` on BRAT region 1 and
checked on region 2; the shipped values live in ``calibration.json`` beside this file, versioned
by :data:`PRIOR_VERSION`). Everything is plain differentiable torch, so calibration fits it with
autograd and the same code runs at inference.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .antenna import sector_gain_db
from .curves import check_curves, curves_db
from .raycast import ray_obstruction, unknown_rates

__all__ = [
    "PRIOR_VERSION",
    "PropagationParams",
    "SiteGeometry",
    "site_geometry",
    "site_power_db",
    "power_sum_db",
    "prior_map",
    "site_maps",
    "load_calibration",
    "CALIBRATION_PATH",
]

PRIOR_VERSION = 3
COMPATIBLE_VERSIONS = (2, 3)  # a version-2 block is version 3 without curves
CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"


@dataclass(frozen=True)
class PropagationParams:
    """The prior's scalars (units in the names; see the module docstring for the formula).

    ``fit_names`` lists the fields calibration may move; the rest are fixed by the set-up.
    """

    p_ref_dbm: float = 0.0
    path_loss_exp: float = 2.2
    freq_db_per_decade: float = 20.0
    height_px: float = 1.5
    tilt_deg: float = 10.0
    vbeam_deg: float = 10.0
    v_sla_db: float = 20.0
    hbeam_deg: float = 65.0
    h_sla_db: float = 25.0
    wall_db: float = 5.0
    pen_db_per_px: float = 0.5
    cap_db: float = 20.0
    loss_freq_exp: float = 0.2
    omni: bool = False
    # The prior's residual field (truth − prior, true sites): spatial correlation
    # (1 − ν)·exp(−d/L) + ν·[d = 0], used by localisation's misfit and measured at calibration.
    # Fraction of the path, next to the receiver, where buildings can block an elevated antenna's
    # ray (≈ roof height / antenna height; chosen at calibration from a grid).
    roof_fraction: float = 1.0
    shadow_recovery_px: float = 1e4
    residual_corr_px: float = 20.0
    residual_nugget: float = 0.2
    # Version 3: the correction curves ({"knots": {feature: [...]}, "values": {feature: [...]}},
    # :mod:`.curves`); None predicts with the scalars alone.
    curves: dict | None = None
    version: int = PRIOR_VERSION

    fit_names = (
        "p_ref_dbm",
        "path_loss_exp",
        "freq_db_per_decade",
        "height_px",
        "tilt_deg",
        "vbeam_deg",
        "v_sla_db",
        "wall_db",
        "pen_db_per_px",
        "cap_db",
        "loss_freq_exp",
        "shadow_recovery_px",
    )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PropagationParams:
        if not isinstance(d, dict):
            raise ValueError(
                "the physics-calibration block must be a JSON object; re-run "
                "`python -m wifidiff_fast.physics.calibrate`"
            )
        if d.get("version") not in COMPATIBLE_VERSIONS:
            raise ValueError(
                f"physics-calibration block has version {d.get('version')!r}, this build reads "
                f"{list(COMPATIBLE_VERSIONS)}; re-calibrate with `python -m wifidiff_fast.physics.calibrate` "
                "or use a checkpoint made by this version"
            )
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"physics-calibration block has unknown fields {sorted(unknown)}")
        curves = d.get("curves")
        if curves is not None:
            check_curves(curves)
        return cls(**d)


def load_calibration(path: str | Path | None = None) -> PropagationParams:
    """The calibrated parameters (the shipped ``calibration.json`` by default)."""
    p = Path(path) if path is not None else CALIBRATION_PATH
    if not p.is_file():
        raise ValueError(
            f"physics calibration {p} is missing; run `python -m wifidiff_fast.physics.calibrate --out {{p}}`"
        )
    with open(p) as fh:
        blob = json.load(fh)
    return PropagationParams.from_dict(blob["params"] if "params" in blob else blob)


@dataclass
class SiteGeometry:
    """Parameter-free geometry of sites ``[T]`` × points ``[P]``: computed once, reused by every
    parameter setting (calibration) and every power/offset fit (localisation)."""

    dist_px: torch.Tensor  # [T, P]
    azimuth: torch.Tensor  # [T, P] clockwise from north, rad
    length_px: torch.Tensor  # [T, P] building pixels crossed
    walls: torch.Tensor  # [T, P] buildings entered
    exit_px: torch.Tensor  # [T, P] distance behind the last building (0 in line of sight)


def site_geometry(
    buildings,
    tx_rc,
    points_rc,
    step_px: float = 0.5,
    receiver_fraction: float = 1.0,
    unknown: tuple[float, float] | None | str = "raster",
) -> SiteGeometry:
    """Distances, azimuths and the ray cast for every (site, point) pair (``receiver_fraction``:
    see :func:`~.raycast.ray_obstruction`; pass ``params.roof_fraction``). ``unknown``: how rays
    count the terrain outside the raster, ``"raster"`` (its own statistics,
    :func:`~.raycast.unknown_rates`), explicit ``(ρ, λ)``, or None (open)."""
    b = torch.as_tensor(buildings)
    if isinstance(unknown, str):
        if unknown != "raster":
            raise ValueError(f"unknown must be 'raster', (density, walls per px) or None, got {unknown!r}")
        unknown = unknown_rates(b)
    tx = torch.as_tensor(tx_rc, dtype=torch.float32).reshape(-1, 2)
    pts = torch.as_tensor(points_rc, dtype=torch.float32).reshape(-1, 2)
    dr = pts[None, :, 0] - tx[:, None, 0]
    dc = pts[None, :, 1] - tx[:, None, 1]
    length, walls, exit_px = ray_obstruction(
        b, tx, pts, step_px=step_px, receiver_fraction=receiver_fraction, unknown=unknown
    )
    return SiteGeometry(torch.sqrt(dr**2 + dc**2), torch.atan2(dc, -dr), length, walls, exit_px)


def _p(params, name):
    """A parameter as a float or a tensor (calibration passes a dict of tensors)."""
    return params[name] if isinstance(params, dict) else getattr(params, name)


def site_power_db(
    geom: SiteGeometry, params, freq_mhz: float, rot=0.0, offset_db=0.0, omni: bool | None = None
) -> torch.Tensor:
    """Each site's received power ``P_k(q)`` in dBm, ``[T, P]``.

    ``params`` is a :class:`PropagationParams` or a dict of (tensor) values with its field names.
    ``rot`` and ``offset_db`` broadcast against ``[T, 1]`` (per-site sector rotation, power offset).
    """
    g = _p
    h = g(params, "height_px")
    d3 = torch.sqrt(geom.dist_px**2 + h**2)
    f = float(freq_mhz) / 1750.0
    p = (
        g(params, "p_ref_dbm")
        - g(params, "freq_db_per_decade") * math.log10(f)
        - 10 * g(params, "path_loss_exp") * torch.log10(d3)
    )
    is_omni = params.omni if omni is None and not isinstance(params, dict) else bool(omni)
    if not is_omni:
        elev = torch.rad2deg(torch.atan2(h * torch.ones_like(geom.dist_px), geom.dist_px))
        rot_t = torch.as_tensor(rot, dtype=torch.float32)
        rot_t = rot_t.reshape(-1, 1) if rot_t.dim() else rot_t
        p = p + sector_gain_db(
            geom.azimuth,
            elev,
            rot_t,
            g(params, "tilt_deg"),
            g(params, "vbeam_deg"),
            float(g(params, "hbeam_deg")),
            0.0,
            float(g(params, "h_sla_db")),
            g(params, "v_sla_db"),
        )
    x = (g(params, "wall_db") * geom.walls + g(params, "pen_db_per_px") * geom.length_px) * f ** g(
        params, "loss_freq_exp"
    )
    cap = g(params, "cap_db")
    # Diffraction fills the shadow in with the distance behind the last obstacle: the loss decays
    # as D / (D + exit) (D = shadow_recovery_px; a very large D keeps the full loss).
    recover = g(params, "shadow_recovery_px")
    p = p - cap * (1 - torch.exp(-x / cap)) * recover / (recover + geom.exit_px)
    curves = params.get("curves") if isinstance(params, dict) else params.curves
    if curves is not None:
        p = p + curves_db(geom, params, curves, rot, sector=not is_omni)
    off = torch.as_tensor(offset_db, dtype=p.dtype)
    return p + (off.reshape(-1, 1) if off.dim() else off)


def power_sum_db(site_db: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Sites added in linear power (numerically safe log-sum-exp in dB)."""
    return (10.0 / math.log(10.0)) * torch.logsumexp(site_db * (math.log(10.0) / 10.0), dim=dim)


def site_maps(
    buildings, tx_rc, freq_mhz: float, params: PropagationParams, rot=0.0, step_px: float = 0.5
) -> torch.Tensor:
    """Each site's power over the whole grid, ``float32 [T, H, W]`` dBm (no offset)."""
    b = torch.as_tensor(buildings)
    H, W = b.shape
    rr, cc = torch.meshgrid(
        torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij"
    )
    pts = torch.stack([rr.reshape(-1), cc.reshape(-1)], -1)
    geom = site_geometry(b, tx_rc, pts, step_px, params.roof_fraction)
    return site_power_db(geom, params, freq_mhz, rot).reshape(-1, H, W)


def prior_map(
    buildings, tx_rc, freq_mhz: float, params: PropagationParams, rot=0.0, offset_db=0.0, step_px: float = 0.5
) -> torch.Tensor:
    """The prior over the whole grid, ``float32 [H, W]`` dBm (buildings get a value too)."""
    return power_sum_db(site_maps(buildings, tx_rc, freq_mhz, params, rot, step_px)) + float(offset_db)
