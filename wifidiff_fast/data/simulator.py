"""Vectorised, seeded torch radio-map simulator (DESIGN §4) that feeds training on the fly.

One call simulates a batch ``[B, H, W]`` of received-power maps in dBm:

* **Layouts** from :func:`~wifidiff_fast.data.layouts.random_layouts` (street grids, scattered and
  rotated blocks, parks), or a fixed layout from the config.
* **Scenarios.** *Region* maps emulate a 256² crop of a BRAT-Lab WinProp region: three 46 dBm
  three-sector masts at (H/4, W/4), (H/4, 3W/4), (3H/4, W/2) of a region 1.6–2.2× the crop, so
  sites often lie outside the crop. *Random* maps hold 1–3 transmitters anywhere in
  ``[-N/4, 5N/4]²``, all street-level access points (isotropic, 15–23 dBm) or all masts.
* **Propagation** per transmitter: log-distance path loss from 1 m (exponent 2–3.5 for access
  points, 2–2.4 for masts, which see mostly free space over the roofs), mast antenna pattern (3GPP
  sector pattern, downtilt, elevated mast: the site pixel is not the maximum, there is a ring of
  maximum at ``h / tan(tilt)``), an obstruction loss from the buildings along the ray (wall
  penetration for access points, a smaller rooftop-diffraction loss for masts), and spatially
  correlated log-normal shadowing. Transmitters add up as a power sum in mW.

**Pixel size.** Access-point maps use 1–2 m pixels. Mast maps use 15–30 m pixels: BRAT's ring of
maximum lies 6–8 px from the site and its value matches free space + 17 dBi at ``h / tan(10°)``
≈ 170 m for a 30 m mast, which puts BRAT's coarse pixel at ≈ 25 m (a 1–2 m pixel would put the ring
~100 px out).

**Ray march.** The obstruction integral along every transmitter→pixel ray is computed in a polar
frame per transmitter: the occupancy is resampled on an (angle × radius) grid covering the map
(≤ 1 px steps both ways), integrated by a cumulative sum along the radius (exact 1-px steps, so no
moiré from skipping thin walls), turned into a loss and resampled back to the Cartesian grid.
Cost ≈ ``A·R`` ≈ 10 N² samples per transmitter instead of ``K·N²`` for K points per ray.

Determinism: every random draw comes from one CPU ``torch.Generator`` (fixed order and shapes) and
is then moved to ``device``, so a seed gives the same draws on CPU and CUDA, and the same maps on a
given device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..physics.antenna import SECTOR_OFFSETS_DEG, sector_gain_db, wrap_angle  # noqa: F401 (re-export)
from .layouts import random_layouts
from .scene import Scene
from .units import P_MAX_DBM, P_MIN_DBM

MAX_TX = 3


@dataclass(frozen=True)
class SimConfig:
    """What :func:`simulate_batch` draws. ``(lo, hi)`` ranges are drawn uniformly per map / per tx.

    Scenario and transmitters:
        scenario: ``"mixed"`` (each map is a region crop with probability ``region_prob``, else
            random), ``"region"`` (BRAT-like 3-site crops) or ``"random"``.
        region_prob: probability of a region crop under ``"mixed"``.
        region_scale_range: region side / crop side (BRAT regions are 419–571 px, seen as 256 crops).
        tx_kind: for random maps: ``"mixed"`` (each map all-AP or all-mast, 50/50), ``"ap"`` or
            ``"mast"``. Region maps are always masts.
        n_tx: fixed number of transmitters (1..3) for random maps; ``None`` draws 1..3.
        tx_rc: fixed transmitter positions ``[(row, col), ...]`` (1..3, pixel units, may lie outside
            the map) used for every map; forces the random scenario with ``n_tx = len(tx_rc)``.
        tx_margin: random positions are drawn in ``[-margin·N, (1 + margin)·N]`` per axis.

    Radio:
        freq_mhz / freq_range_mhz: fixed carrier or its range.
        pixel_m: fixed pixel size in metres for every map; ``None`` draws from the kind's range.
        ap_pixel_m_range, mast_pixel_m_range: pixel size for access-point / mast maps.
        path_loss_exp: fixed log-distance exponent; ``None`` draws from the kind's range.
        ap_path_loss_exp_range, mast_path_loss_exp_range: exponent ranges.
        ap_power_dbm_range, ap_height_m_range: street-level access points (isotropic).
        mast_power_dbm, mast_gain_dbi: per-sector transmit power and boresight gain.
        mast_height_m_range, mast_downtilt_deg_range, mast_vbeam_deg_range: the elevated mast and
            its vertical pattern (3GPP: ``-min(12((θ-tilt)/θ3dB)², 20)``).
        mast_hbeam_deg: horizontal 3 dB beamwidth (3GPP: ``-min(12(φ/65°)², 25)``).
        rx_height_m: receiver height.

    Buildings and losses:
        buildings: fixed layout ``uint8 [H, W]`` or ``[B, H, W]`` instead of random layouts.
        building_fraction_range: target building fraction of random layouts; ``(0, 0)`` = none.
        mast_building_fraction_range: the same for mast maps (BRAT regions: 3.1 % and 11.5 %).
        ap_layout_scale_range, mast_layout_scale_range: layout length scale (see ``random_layouts``).
        ap_wall_db_range, ap_pen_db_per_px_range, ap_pen_cap_db_range: access-point wall
            penetration: ``a_wall·walls + a_px·pixels_in_buildings``, soft-capped at ``cap``.
        mast_roof_db_range, mast_roof_db_per_px_range, mast_roof_cap_db_range: same form for the
            rooftop-diffraction loss seen by masts (smaller: the mast is above the roofs).
        loss_freq_exp: obstruction losses scale with ``(f / 1750 MHz)^loss_freq_exp``.
        shadowing: add correlated log-normal shadowing.
        shadow_sigma_db_range, shadow_corr_px_range: its std and Gaussian correlation length.
        mast_shadow_sigma_db_range: std for mast maps (BRAT's WinProp maps show almost no random
            shadowing; their variation comes from the buildings).

    Quality knobs:
        ray_step_px: radial and tangential step of the polar ray-march grid (≤ 1 avoids missing
            1-px walls).
        mast_model: ``"drawn"`` (the randomised mast physics above) or ``"prior"`` (each mast is
            the calibrated propagation prior of :mod:`wifidiff_fast.physics.prior`, plus the
            drawn shadowing: the same physics inference localises with, BRAT-faithful by
            calibration; about 0.5 s per mast on a 256² CPU map).
    """

    scenario: str = "mixed"
    region_prob: float = 0.5
    region_scale_range: tuple[float, float] = (1.6, 2.2)
    tx_kind: str = "mixed"
    n_tx: int | None = None
    tx_rc: tuple | None = None
    tx_margin: float = 0.25
    freq_mhz: float | None = None
    freq_range_mhz: tuple[float, float] = (1750.0, 5750.0)
    pixel_m: float | None = None
    ap_pixel_m_range: tuple[float, float] = (1.0, 2.0)
    mast_pixel_m_range: tuple[float, float] = (15.0, 30.0)
    path_loss_exp: float | None = None
    ap_path_loss_exp_range: tuple[float, float] = (2.0, 3.5)
    mast_path_loss_exp_range: tuple[float, float] = (2.0, 2.4)
    ap_power_dbm_range: tuple[float, float] = (15.0, 23.0)
    ap_height_m_range: tuple[float, float] = (1.5, 3.0)
    mast_power_dbm: float = 46.0
    mast_gain_dbi: float = 16.0
    mast_height_m_range: tuple[float, float] = (25.0, 35.0)
    mast_downtilt_deg_range: tuple[float, float] = (8.0, 12.0)
    mast_vbeam_deg_range: tuple[float, float] = (8.0, 14.0)
    mast_hbeam_deg: float = 65.0
    rx_height_m: float = 1.5
    buildings: object = field(default=None, repr=False)
    building_fraction_range: tuple[float, float] = (0.03, 0.30)
    mast_building_fraction_range: tuple[float, float] = (0.03, 0.15)
    ap_layout_scale_range: tuple[float, float] = (0.6, 1.5)
    mast_layout_scale_range: tuple[float, float] = (0.25, 0.5)
    ap_wall_db_range: tuple[float, float] = (3.0, 8.0)
    ap_pen_db_per_px_range: tuple[float, float] = (0.5, 2.0)
    ap_pen_cap_db_range: tuple[float, float] = (30.0, 40.0)
    mast_roof_db_range: tuple[float, float] = (4.0, 9.0)
    mast_roof_db_per_px_range: tuple[float, float] = (0.2, 1.0)
    mast_roof_cap_db_range: tuple[float, float] = (12.0, 20.0)
    loss_freq_exp: float = 0.2
    shadowing: bool = True
    shadow_sigma_db_range: tuple[float, float] = (2.0, 6.0)
    mast_shadow_sigma_db_range: tuple[float, float] = (1.0, 3.0)
    shadow_corr_px_range: tuple[float, float] = (5.0, 20.0)
    ray_step_px: float = 1.0
    mast_model: str = "drawn"

    def __post_init__(self) -> None:
        if self.mast_model not in ("drawn", "prior"):
            raise ValueError(f"mast_model must be 'drawn' or 'prior', got {self.mast_model!r}")
        if self.scenario not in ("mixed", "region", "random"):
            raise ValueError(f"scenario must be 'mixed', 'region' or 'random', got {self.scenario!r}")
        if self.tx_kind not in ("mixed", "ap", "mast"):
            raise ValueError(f"tx_kind must be 'mixed', 'ap' or 'mast', got {self.tx_kind!r}")
        if self.n_tx is not None and not 1 <= self.n_tx <= MAX_TX:
            raise ValueError(f"n_tx must be in 1..{MAX_TX}, got {self.n_tx}")
        if self.tx_rc is not None:
            t = np.asarray(self.tx_rc, dtype=np.float64)
            if t.ndim != 2 or t.shape[1] != 2 or not 1 <= t.shape[0] <= MAX_TX:
                raise ValueError(f"tx_rc must be 1..{MAX_TX} (row, col) pairs, got shape {t.shape}")
        if not 0.0 <= self.region_prob <= 1.0:
            raise ValueError(f"region_prob must be in [0, 1], got {self.region_prob}")
        if self.ray_step_px <= 0:
            raise ValueError("ray_step_px must be > 0")
        if self.pixel_m is not None and self.pixel_m <= 0:
            raise ValueError("pixel_m must be > 0")


@dataclass
class SimBatch:
    """A simulated batch (all tensors on the requested device).

    Attributes:
        rss_dbm: ``float32 [B, H, W]`` received power in dBm, clipped to ``[P_MIN_DBM, P_MAX_DBM]``,
            finite everywhere (building pixels hold a value too; the caller masks them).
        buildings: ``uint8 [B, H, W]``, 1 = building.
        tx_rc: ``float32 [B, 3, 2]`` transmitter (row, col), may lie outside the grid; unused slots NaN.
        n_tx: ``int64 [B]`` number of transmitters (1..3).
        freq_mhz: ``float32 [B]`` carrier frequency.
        is_region: ``bool [B]`` the map is a BRAT-like 3-site region crop.
        is_mast: ``bool [B]`` the map's transmitters are masts (else access points).
        pixel_m: ``float32 [B]`` pixel size in metres.
    """

    rss_dbm: torch.Tensor
    buildings: torch.Tensor
    tx_rc: torch.Tensor
    n_tx: torch.Tensor
    freq_mhz: torch.Tensor
    is_region: torch.Tensor
    is_mast: torch.Tensor
    pixel_m: torch.Tensor


def _u(gen: torch.Generator, shape: int | tuple[int, ...], rng: tuple[float, float]) -> torch.Tensor:
    lo, hi = rng
    return torch.rand(shape, generator=gen) * (hi - lo) + lo


def _pick(flag: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-map choice: ``a`` where ``flag`` else ``b`` (flag ``[B]``, a/b ``[B, ...]``)."""
    return torch.where(flag.view(-1, *([1] * (a.dim() - 1))), a, b)


_wrap = wrap_angle


# --------------------------------------------------------------------------------------------
# Ray march in a polar frame
# --------------------------------------------------------------------------------------------


def _polar_frames(tx: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, ...]:
    """Per-transmitter polar window covering the map.

    Args:
        tx: ``[n, 2]`` (row, col).
    Returns:
        ``ref, lo, hi, r0, r1`` each ``[n]``: angles are ``ref + wrap(atan2(dr, dc) - ref)`` and lie
        in ``[lo, hi]``; radii in ``[r0, r1]``.
    """
    dev = tx.device
    corners = torch.tensor([[-0.5, -0.5], [-0.5, W - 0.5], [H - 0.5, -0.5], [H - 0.5, W - 0.5]], device=dev)
    d = corners[None] - tx[:, None]  # [n, 4, 2]
    r1 = d.norm(dim=-1).amax(-1) + 1.0
    near = torch.stack([tx[:, 0].clamp(-0.5, H - 0.5), tx[:, 1].clamp(-0.5, W - 0.5)], -1)
    r0 = ((near - tx).norm(dim=-1) - 1.0).clamp_min(0.0)
    inside = (near - tx).abs().amax(-1) == 0
    ref = torch.atan2((H - 1) / 2 - tx[:, 0], (W - 1) / 2 - tx[:, 1])
    ref = torch.where(inside, torch.zeros_like(ref), ref)
    delta = _wrap(torch.atan2(d[..., 0], d[..., 1]) - ref[:, None])
    pad = 1.0 / r1  # about one pixel of angle at the far edge
    lo = torch.where(inside, -math.pi - pad, ref + delta.amin(-1) - pad)
    hi = torch.where(inside, math.pi + pad, ref + delta.amax(-1) + pad)
    return ref, lo, hi, r0, r1


def _obstruction_loss(
    occ: torch.Tensor,
    tx: torch.Tensor,
    coef: torch.Tensor,
    rho: torch.Tensor,
    theta: torch.Tensor,
    frames: tuple[torch.Tensor, ...],
    step: float,
    chunk: int = 6,
) -> torch.Tensor:
    """Building loss along every ray, ``[n, H, W]`` in dB.

    Args:
        occ: ``float32 [n, H, W]`` occupancy seen by each ray set (one per transmitter).
        tx: ``[n, 2]`` transmitter (row, col).
        coef: ``[n, 4]`` (dB per wall, dB per building pixel, soft cap dB, clear radius px).
        rho, theta: ``[n, H, W]`` every pixel's radius and (unwrapped) angle in its tx frame.
        frames: output of :func:`_polar_frames`.
        step: polar grid step in pixels (radial and tangential at the far edge).
    """
    n, H, W = occ.shape
    ref, lo, hi, r0, r1 = frames
    out = torch.empty_like(occ)
    span_r, span_a = (r1 - r0).tolist(), ((hi - lo) * r1).tolist()
    for i in range(0, n, chunk):
        j = slice(i, min(i + chunk, n))
        # Grid size per chunk (data dependent but deterministic): ≤ step px at the far edge.
        R = int(math.ceil(max(span_r[j]) / step)) + 2
        A = int(math.ceil(max(span_a[j]) / step)) + 2
        t = torch.linspace(0, 1, A, device=occ.device)
        s = torch.linspace(0, 1, R, device=occ.device)
        ang = lo[j, None] + (hi - lo)[j, None] * t  # [m, A]
        rad = r0[j, None] + (r1 - r0)[j, None] * s  # [m, R]
        rows = tx[j, 0, None, None] + rad[:, :, None] * torch.sin(ang)[:, None]  # [m, R, A]
        cols = tx[j, 1, None, None] + rad[:, :, None] * torch.cos(ang)[:, None]
        grid = torch.stack([cols / (W - 1) * 2 - 1, rows / (H - 1) * 2 - 1], -1)
        o = F.grid_sample(occ[j, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[
            :, 0
        ]  # [m, R, A]
        o = o * (rad > coef[j, 3, None])[:, :, None]  # masts clear their own roof
        dr = ((r1 - r0)[j] / (R - 1))[:, None, None]
        length = (torch.cumsum(o, 1) - 0.5 * o) * dr  # px of building crossed (trapezoid)
        walls = torch.cumsum(torch.diff(o, dim=1, prepend=torch.zeros_like(o[:, :1])).clamp_min(0), 1)
        x = coef[j, 0, None, None] * walls + coef[j, 1, None, None] * length
        cap = coef[j, 2, None, None]
        loss = cap * (1 - torch.exp(-x / cap))  # soft cap: no kink where the cap is reached
        back = torch.stack(
            [
                (theta[j] - lo[j, None, None]) / (hi - lo)[j, None, None] * 2 - 1,
                (rho[j] - r0[j, None, None]) / (r1 - r0)[j, None, None] * 2 - 1,
            ],
            -1,
        )
        out[j] = F.grid_sample(
            loss[:, None], back, mode="bilinear", padding_mode="border", align_corners=True
        )[:, 0]
    return out


# --------------------------------------------------------------------------------------------
# Shadowing and antenna
# --------------------------------------------------------------------------------------------


def _shadowing(noise: torch.Tensor, sigma: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
    """Gaussian-filtered white noise (FFT, per-field correlation), unit std then × sigma.

    noise ``[n, H, W]``, sigma/corr ``[n]`` → ``[n, H, W]`` dB.
    """
    n, H, W = noise.shape
    ky = torch.fft.fftfreq(H, device=noise.device)[:, None]
    kx = torch.fft.rfftfreq(W, device=noise.device)[None]
    k2 = ky**2 + kx**2
    filt = torch.exp(-2 * math.pi**2 * corr[:, None, None] ** 2 * k2)  # FT of a Gaussian, std = corr
    f = torch.fft.irfft2(torch.fft.rfft2(noise) * filt, s=(H, W))
    f = f - f.mean((1, 2), keepdim=True)
    f = f / f.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    return f * sigma[:, None, None]


def _mast_gain_db(
    az: torch.Tensor,
    elev_deg: torch.Tensor,
    rot: torch.Tensor,
    tilt: torch.Tensor,
    vbeam: torch.Tensor,
    hbeam: float,
    gmax: float,
) -> torch.Tensor:
    """Three-sector site gain ``[n, H, W]`` dB: the shared pattern of :mod:`wifidiff_fast.physics.antenna`
    with per-transmitter rotation, downtilt and vertical beamwidth ``[n]``."""
    return sector_gain_db(
        az, elev_deg, rot[:, None, None], tilt[:, None, None], vbeam[:, None, None], hbeam, gmax
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _check(batch, size) -> None:
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")


@dataclass
class _MapDraws:
    """Per-map draws ``[B]``: scenario, transmitter kind, carrier, pixel size, path-loss exponent."""

    region: torch.Tensor  # bool: a BRAT-like 3-site region crop
    mast: torch.Tensor  # bool: masts (else access points)
    freq: torch.Tensor  # MHz
    px: torch.Tensor  # pixel size, m
    ple: torch.Tensor  # path-loss exponent
    layout_scale: torch.Tensor


@dataclass
class _TxDraws:
    """Per-transmitter draws ``[B, T]`` (``T = MAX_TX`` slots, unused ones included)."""

    power_dbm: torch.Tensor
    height_m: torch.Tensor
    coef: torch.Tensor  # [B, T, 4]: dB per wall/roof edge, dB per building px, soft cap dB, clear radius px
    rot: torch.Tensor  # sector rotation, rad
    tilt: torch.Tensor  # downtilt, deg
    vbeam: torch.Tensor  # vertical beamwidth, deg
    shadow_sigma: torch.Tensor  # dB
    shadow_corr: torch.Tensor  # px
    noise: torch.Tensor | None  # [B, T, N, N] white noise of the shadowing field


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError("seed generator must be a CPU torch.Generator")
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return torch.Generator().manual_seed(int(seed))
    raise ValueError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")


def _draw_maps(g: torch.Generator, B: int, cfg: SimConfig) -> _MapDraws:
    """Step 1: what each map is (CPU draws in a fixed order, whatever the config fixes)."""
    if cfg.tx_rc is not None or cfg.scenario == "random":
        region = torch.zeros(B, dtype=torch.bool)
        torch.rand(B, generator=g)  # keep the draw sequence independent of the scenario
    elif cfg.scenario == "region":
        region = torch.ones(B, dtype=torch.bool)
        torch.rand(B, generator=g)
    else:
        region = torch.rand(B, generator=g) < cfg.region_prob
    kind_draw = torch.rand(B, generator=g) < 0.5
    if cfg.tx_kind == "mixed":
        mast = region | kind_draw
    else:
        mast = region | torch.full((B,), cfg.tx_kind == "mast")
    freq = _u(g, B, cfg.freq_range_mhz)
    if cfg.freq_mhz is not None:
        freq = torch.full((B,), float(cfg.freq_mhz))
    px = _pick(mast, _u(g, B, cfg.mast_pixel_m_range), _u(g, B, cfg.ap_pixel_m_range))
    if cfg.pixel_m is not None:
        px = torch.full((B,), float(cfg.pixel_m))
    ple = _pick(mast, _u(g, B, cfg.mast_path_loss_exp_range), _u(g, B, cfg.ap_path_loss_exp_range))
    if cfg.path_loss_exp is not None:
        ple = torch.full((B,), float(cfg.path_loss_exp))
    scale = _pick(mast, _u(g, B, cfg.mast_layout_scale_range), _u(g, B, cfg.ap_layout_scale_range))
    return _MapDraws(region, mast, freq, px, ple, scale)


def _layout(
    g: torch.Generator, B: int, N: int, cfg: SimConfig, maps: _MapDraws, dev: torch.device
) -> torch.Tensor:
    """Step 2: the buildings, ``uint8 [B, N, N]`` on ``dev`` (the config's, or random layouts)."""
    if cfg.buildings is not None:
        bld = cfg.buildings
        bld = bld.detach().cpu() if isinstance(bld, torch.Tensor) else torch.as_tensor(np.asarray(bld))
        if bld.dim() == 2:
            bld = bld.expand(B, -1, -1)
        if tuple(bld.shape) != (B, N, N):
            raise ValueError(
                f"config.buildings must be [{N}, {N}] or [{B}, {N}, {N}], got {tuple(bld.shape)}"
            )
        return (bld > 0).to(torch.uint8).to(dev)
    # Draw each map's target fraction here so mast maps can use their own range.
    fraction = _pick(
        maps.mast, _u(g, B, cfg.mast_building_fraction_range), _u(g, B, cfg.building_fraction_range)
    )
    return random_layouts(B, N, g, dev, scale=maps.layout_scale, fraction=fraction)


def _place_transmitters(
    g: torch.Generator, B: int, N: int, cfg: SimConfig, maps: _MapDraws, bld: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step 3: transmitter positions ``tx [B, T, 2]`` (NaN in unused slots), ``n_tx [B]`` and the
    used-slot mask ``[B, T]``."""
    T = MAX_TX
    # Region crops: 3 sites at BRAT's 1/4, 3/4 placement in a larger region, seen through a crop.
    reg_scale = _u(g, (B, 2), cfg.region_scale_range) * N
    crop_off = torch.rand((B, 2), generator=g) * (reg_scale - N)
    frac = torch.tensor([[0.25, 0.25], [0.25, 0.75], [0.75, 0.5]])
    reg_tx = frac[None] * reg_scale[:, None] - crop_off[:, None] + _u(g, (B, T, 2), (-0.5, 0.5))
    # Random transmitters: K candidates each; access points take the first one not on a building.
    K = 8
    m = cfg.tx_margin
    cand = _u(g, (B, T, K, 2), (-m * N, (1 + m) * N))
    n_rand = torch.randint(1, T + 1, (B,), generator=g)
    if cfg.n_tx is not None:
        n_rand = torch.full((B,), cfg.n_tx, dtype=torch.int64)
    ci = cand.round().long()
    on_map = ((ci >= 0) & (ci < N)).all(-1)
    cic = ci.clamp(0, N - 1)
    on_bld = bld.cpu()[torch.arange(B)[:, None, None], cic[..., 0], cic[..., 1]].bool() & on_map
    ok = ~on_bld | maps.mast[:, None, None]
    first = torch.argmax(ok.to(torch.int8), dim=-1)  # first acceptable candidate (0 if none)
    rnd_tx = torch.gather(cand, 2, first[..., None, None].expand(-1, -1, 1, 2))[:, :, 0]
    tx = _pick(maps.region, reg_tx, rnd_tx)
    n_tx = torch.where(maps.region, torch.full((B,), T), n_rand)
    if cfg.tx_rc is not None:
        fx = torch.as_tensor(np.asarray(cfg.tx_rc, dtype=np.float32))
        tx = torch.full((B, T, 2), float("nan"))
        tx[:, : fx.shape[0]] = fx
        n_tx = torch.full((B,), fx.shape[0], dtype=torch.int64)
    used = torch.arange(T)[None] < n_tx[:, None]  # [B, T]
    tx = torch.where(used[..., None], tx, torch.tensor(float("nan")))
    return tx, n_tx, used


def _draw_transmitters(g: torch.Generator, B: int, N: int, cfg: SimConfig, maps: _MapDraws) -> _TxDraws:
    """Step 4: power, height, antenna and loss coefficients, shadowing of every transmitter slot."""
    T = MAX_TX
    p_ap = _u(g, (B, T), cfg.ap_power_dbm_range)
    h_ap = _u(g, (B, T), cfg.ap_height_m_range)
    h_mast = _u(g, (B, T), cfg.mast_height_m_range)
    tilt = _u(g, (B, T), cfg.mast_downtilt_deg_range)
    vbeam = _u(g, (B, T), cfg.mast_vbeam_deg_range)
    rot = _u(g, (B, T), (0.0, 2 * math.pi / 3))
    c_ap = torch.stack(
        [
            _u(g, (B, T), cfg.ap_wall_db_range),
            _u(g, (B, T), cfg.ap_pen_db_per_px_range),
            _u(g, (B, T), cfg.ap_pen_cap_db_range),
            torch.zeros(B, T),
        ],
        -1,
    )
    c_ms = torch.stack(
        [
            _u(g, (B, T), cfg.mast_roof_db_range),
            _u(g, (B, T), cfg.mast_roof_db_per_px_range),
            _u(g, (B, T), cfg.mast_roof_cap_db_range),
            torch.full((B, T), 1.5),
        ],
        -1,
    )
    sh_sigma = torch.where(
        maps.mast[:, None],
        _u(g, (B, T), cfg.mast_shadow_sigma_db_range),
        _u(g, (B, T), cfg.shadow_sigma_db_range),
    )
    sh_corr = _u(g, (B, T), cfg.shadow_corr_px_range)
    noise = torch.randn((B, T, N, N), generator=g) if cfg.shadowing else None

    mast_t = maps.mast[:, None].expand(B, T)
    power = torch.where(mast_t, torch.tensor(cfg.mast_power_dbm), p_ap)
    height = torch.where(mast_t, h_mast, h_ap)
    coef = torch.where(mast_t[..., None], c_ms, c_ap)
    coef[..., :2] *= (maps.freq[:, None, None] / 1750.0) ** cfg.loss_freq_exp
    return _TxDraws(power, height, coef, rot, tilt, vbeam, sh_sigma, sh_corr, noise)


class _UsedSlots:
    """The used transmitter slots, indexed once (CPU, deterministic order) and moved to ``dev``:
    physics runs over these ``n`` transmitters only and is scattered back to ``[B, T]`` at the end."""

    def __init__(self, used: torch.Tensor, dev: torch.device) -> None:
        self.B, self.T = used.shape
        self.dev = dev
        self.sel = used.reshape(-1).nonzero()[:, 0]  # [n] into the flattened B·T slots
        self.owner = self.sel // self.T  # the map of each used transmitter

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, ...]`` → ``[n, ...]`` on the device."""
        return x.reshape(self.B * self.T, *x.shape[2:])[self.sel].to(self.dev)

    def per_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-map ``[B]`` → ``[n, 1, 1]`` on the device."""
        return x[self.owner].to(self.dev)[:, None, None]


def _received_power_db(
    slots: _UsedSlots,
    N: int,
    cfg: SimConfig,
    maps: _MapDraws,
    txd: _TxDraws,
    tx: torch.Tensor,
    bld: torch.Tensor,
) -> torch.Tensor:
    """Step 5: each used transmitter's power at every pixel, ``[n, N, N]`` dBm: path loss, building
    obstruction along the ray, the mast antenna pattern (or the calibrated prior), shadowing."""
    dev = slots.dev
    txf = slots.flat(tx)
    rr = torch.arange(N, device=dev, dtype=torch.float32)[None, :, None]
    cc = torch.arange(N, device=dev, dtype=torch.float32)[None, None, :]
    dr = rr - txf[:, 0, None, None]  # [n, H, 1]
    dc = cc - txf[:, 1, None, None]  # [n, 1, W]
    rho = torch.sqrt(dr**2 + dc**2)  # [n, H, W] px
    frames = _polar_frames(txf, N, N)
    ref = frames[0][:, None, None]
    theta = ref + _wrap(torch.atan2(dr, dc) - ref)

    occ = bld.float()[slots.owner.to(dev)]  # [n, H, W]
    obst = _obstruction_loss(occ, txf, slots.flat(txd.coef), rho, theta, frames, cfg.ray_step_px)

    dh = slots.flat((txd.height_m - cfg.rx_height_m).clamp_min(0.0))[:, None, None]
    d_h = rho * slots.per_map(maps.px)  # horizontal distance, m
    d3 = torch.sqrt(d_h**2 + dh**2).clamp_min(1.0)
    pl = 20 * torch.log10(slots.per_map(maps.freq)) - 27.55 + 10 * slots.per_map(maps.ple) * torch.log10(d3)
    p = slots.flat(txd.power_dbm)[:, None, None] - pl - obst

    mast_t = maps.mast[:, None].expand(slots.B, slots.T)
    m = mast_t.reshape(-1)[slots.sel].nonzero()[:, 0].to(dev)  # masts among the used transmitters
    if m.numel():
        dr_m, dc_m = dr[m], dc[m]
        az = torch.atan2(dc_m, -dr_m)  # clockwise from north (row 0 is north)
        elev = torch.rad2deg(torch.atan2(dh[m].expand_as(d_h[m]), d_h[m]))
        p[m] += _mast_gain_db(
            az,
            elev,
            slots.flat(txd.rot)[m],
            slots.flat(txd.tilt)[m],
            slots.flat(txd.vbeam)[m],
            cfg.mast_hbeam_deg,
            cfg.mast_gain_dbi,
        )
        if cfg.mast_model == "prior":
            _replace_masts_by_prior(p, m, slots, txf, maps, txd, bld)
    if txd.noise is not None:
        p = p + _shadowing(slots.flat(txd.noise), slots.flat(txd.shadow_sigma), slots.flat(txd.shadow_corr))
    return p


def _replace_masts_by_prior(
    p: torch.Tensor,
    m: torch.Tensor,
    slots: _UsedSlots,
    txf: torch.Tensor,
    maps: _MapDraws,
    txd: _TxDraws,
    bld: torch.Tensor,
) -> None:
    """``mast_model="prior"``: the calibrated propagation prior (the one inference localises with)
    replaces the drawn mast physics — BRAT-faithful fall-off, sector ring and building losses."""
    from ..physics.prior import load_calibration, site_maps

    prior = load_calibration()
    rot_m, owner_m = slots.flat(txd.rot)[m], slots.owner.to(slots.dev)[m]
    for k, j in enumerate(m.tolist()):
        i = int(owner_m[k])
        p[j] = site_maps(
            bld[i].cpu(), txf[j : j + 1].cpu(), float(maps.freq[i]), prior, rot=float(rot_m[k]), step_px=1.0
        )[0].to(slots.dev)


def _power_sum_dbm(p: torch.Tensor, slots: _UsedSlots, N: int) -> torch.Tensor:
    """Step 6: the transmitters of a map add up in mW, ``float32 [B, N, N]`` dBm, clipped."""
    # Scatter into the B·T slots and sum in a fixed order (index_add_ uses atomics on CUDA, whose
    # summation order varies run to run).
    mw = torch.zeros((slots.B * slots.T, N, N), device=slots.dev)
    mw[slots.sel.to(slots.dev)] = torch.pow(10.0, p / 10)
    total = mw.reshape(slots.B, slots.T, N, N).sum(1).clamp_min(1e-30)
    return (10 * torch.log10(total)).clamp(P_MIN_DBM, P_MAX_DBM).to(torch.float32)


def simulate_batch(
    batch: int,
    size: int = 256,
    seed: int | torch.Generator = 0,
    device="cpu",
    config: SimConfig | None = None,
) -> SimBatch:
    """Simulate ``batch`` radio maps of ``size × size`` pixels.

    The physical steps, in order (every random draw from one CPU generator, in a fixed order):
    what each map is (:func:`_draw_maps`), its buildings (:func:`_layout`), where its transmitters
    stand (:func:`_place_transmitters`) and what they are (:func:`_draw_transmitters`), each
    transmitter's received power (:func:`_received_power_db`), their power sum (:func:`_power_sum_dbm`).

    Args:
        batch: number of maps ``B`` (≥ 1).
        size: side ``N`` (≥ 16).
        seed: an int seed or a CPU ``torch.Generator`` (consumed; pass the same one on to get the
            next batch of a stream).
        device: where the maps are computed and returned.
        config: what to draw; defaults to ``SimConfig()``.

    Returns:
        :class:`SimBatch` with ``rss_dbm`` ``float32 [B, N, N]`` etc.
    """
    _check(batch, size)
    cfg = config or SimConfig()
    g = _generator(seed)
    B, N = int(batch), int(size)
    dev = torch.device(device)

    maps = _draw_maps(g, B, cfg)
    bld = _layout(g, B, N, cfg, maps, dev)
    tx, n_tx, used = _place_transmitters(g, B, N, cfg, maps, bld)
    txd = _draw_transmitters(g, B, N, cfg, maps)
    slots = _UsedSlots(used, dev)
    p = _received_power_db(slots, N, cfg, maps, txd, tx, bld)
    return SimBatch(
        rss_dbm=_power_sum_dbm(p, slots, N),
        buildings=bld,
        tx_rc=tx.float().to(dev),
        n_tx=n_tx.long().to(dev),
        freq_mhz=maps.freq.float().to(dev),
        is_region=maps.region.to(dev),
        is_mast=maps.mast.to(dev),
        pixel_m=maps.px.float().to(dev),
    )


def simulate_scenes(n: int, size: int = 256, seed: int = 0, chunk: int = 8) -> list[Scene]:
    """``n`` deterministic simulated scenes (CPU), named ``sim_s{seed}_i{i}``.

    RSS is NaN on buildings; ``tx_rc`` holds the rounded positions of the transmitters in use.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    _check(1, size)
    g = torch.Generator().manual_seed(int(seed))
    scenes: list[Scene] = []
    for start in range(0, n, chunk):
        sb = simulate_batch(min(chunk, n - start), size, g)
        for k in range(sb.rss_dbm.shape[0]):
            i = start + k
            nt = int(sb.n_tx[k])
            scenes.append(
                Scene(
                    name=f"sim_s{seed}_i{i}",
                    rss_dbm=sb.rss_dbm[k].numpy(),
                    buildings=sb.buildings[k].numpy(),
                    freq_mhz=float(sb.freq_mhz[k]),
                    tx_rc=np.round(sb.tx_rc[k, :nt].numpy()).astype(np.int64),
                    source=f"wifidiff_fast simulator (seed {seed})",
                )
            )
    return scenes
