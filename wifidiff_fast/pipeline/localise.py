"""Transmitter localisation by analysis by synthesis.

Every candidate site position is scored by how well the calibrated propagation prior
(:mod:`wifidiff_fast.physics.prior`), placed there, explains the samples:

1. **Coarse search.** Positions on a grid of ``coarse_step_px`` covering the window plus a margin
   of ``margin`` × its size on every side (sites often stand outside the window). A table of the
   prior's site power at the samples ``P(q_i; x)`` (ray cast included) is computed once for every
   grid position. Building-aware: a position whose shadows contradict the samples loses, which a
   log-distance fit cannot see.
2. **Misfit.** For a set of sites (power-summed, one common offset ``a``: the sites of a network
   transmit alike) the residual ``r = p − P − a`` is scored by the Gaussian-process quadratic
   form ``rᵀR⁻¹r`` with the calibrated residual correlation (:func:`residual_precision`), plus a
   Gaussian prior that keeps ``a`` near the calibrated power (``offset_sigma_db``).
3. **Refinement.** Local minima are refined on ``coarse/4`` then 1-px grids.
4. **Sets.** From each of the ``n_starts`` best first sites a set is grown greedily: a second and
   third site are kept when they lower the misfit by more than ``bic_per_site``·log N·σ² (a
   BIC-style penalty), each addition followed by coordinate sweeps that re-place earlier sites.

The result: the alternative sets (best first; :mod:`.physics_map` averages them by evidence) and
a fixed-capacity list of hypotheses (position, power offset, sector rotation, score) whose first
``n_sites`` form the best set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..physics.prior import PropagationParams, power_sum_db, site_geometry, site_power_db
from ..physics.raycast import unknown_rates
from .evidence import residual_correlation

__all__ = [
    "LocaliseParams",
    "SiteHypothesis",
    "SiteSet",
    "Localisation",
    "localise",
    "inside_log_prior",
    "outside_distance",
]

HUBER_DB = 6.0  # soft-L1 scale: residuals beyond it count linearly (kriging fixes the rest)
# Typical error of the calibrated prior with the true sites (3.3–3.9 dB on BRAT, calibration.json):
# the unit that turns the offset prior and the per-site penalty into misfit units.
MODEL_ERROR_DB = 3.5


@dataclass(frozen=True)
class LocaliseParams:
    """Search settings (pixel units of the window)."""

    capacity: int = 8  # hypotheses returned (fixed shape)
    max_sites: int = 3  # sites in the explaining set
    margin: float = 0.5  # search window margin, × window size per side
    coarse_step_px: float = 8.0
    # First-site starts, each grown into a full set. With few samples the misfit has many near-equal
    # minima: region 1 (16 windows, prior v3) MSE gain vs kriging at N = 10 was 1.74× / 1.95× /
    # 2.04× / 2.08× with 4 / 8 / 12 / 16 starts, and unchanged at N = 25 and 50 (2.39–2.43×, 1.82×).
    n_starts: int = 12
    bic_per_site: float = 3.0  # a new site must gain this × log N × MODEL_ERROR_DB²
    max_coarse_samples: int = 64  # coarse stage uses at most this many samples (seeded subset)
    step_px: float = 1.0  # ray-march step of the search
    offset_sigma_db: float | None = 1.5  # prior std of the power offset (None: free power)
    sweeps: int = 2  # coordinate-descent passes over the chosen sites
    gp_misfit: bool = True  # correlated-residual (GP) misfit instead of independent soft-L1
    # Prior that the area of interest holds a transmitter: the set's site nearest the grid lies
    # outside it by d px with log-prior −½(d/σ)² (None: sites anywhere within the margin alike).
    inside_sigma_px: float | None = None

    def __post_init__(self):
        if int(self.capacity) < 1:
            raise ValueError(
                f"hypothesis capacity must be >= 1, got {self.capacity}; "
                "ask for at least one transmitter hypothesis"
            )
        if not 1 <= int(self.max_sites) <= int(self.capacity):
            raise ValueError(f"max_sites must be in 1..capacity ({self.capacity}), got {self.max_sites}")
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"margin must be in [0, 2] window sizes, got {self.margin}")
        if self.coarse_step_px <= 0 or self.step_px <= 0:
            raise ValueError("coarse_step_px and step_px must be > 0")
        if self.inside_sigma_px is not None and not self.inside_sigma_px > 0:
            raise ValueError(f"inside_sigma_px must be > 0 px or None, got {self.inside_sigma_px}")


@dataclass
class SiteHypothesis:
    row: float
    col: float
    offset_db: float  # power offset against the calibrated site power
    rot_rad: float  # sector rotation (BRAT: 0)
    score: float  # misfit of the set it belongs to (lower is better)

    def rc(self) -> tuple[float, float]:
        return (self.row, self.col)


@dataclass
class SiteSet:
    """One explanation of the samples: sites that transmit together, one common offset."""

    sites: list[SiteHypothesis]
    offset_db: float
    score: float  # penalised robust misfit (lower is better)
    misfit_db: float  # RMS residual at the samples


@dataclass
class Localisation:
    hypotheses: list[SiteHypothesis]  # ``capacity`` entries, best first
    n_sites: int  # the first n_sites form the explaining set
    misfit_db: float  # RMS residual of the explaining set at the samples
    grid_scores: np.ndarray = field(repr=False, default=None)  # coarse single-site score map
    sets: list[SiteSet] = field(default_factory=list)  # alternative explanations, best first

    @property
    def sites(self) -> list[SiteHypothesis]:
        return self.hypotheses[: self.n_sites]

    def as_array(self) -> np.ndarray:
        """``float32 [capacity, 5]``: row, col, offset_db, rot_rad, score (fixed shape)."""
        return np.array(
            [[h.row, h.col, h.offset_db, h.rot_rad, h.score] for h in self.hypotheses], dtype=np.float32
        )


def _rho(r: torch.Tensor) -> torch.Tensor:
    c2 = HUBER_DB**2
    return 2 * c2 * (torch.sqrt(1 + r**2 / c2) - 1)


def _robust_offset(res: torch.Tensor, shrink: float = 0.0, iters: int = 3) -> torch.Tensor:
    """Per-row offset minimising Σρ(res − a) + shrink·a² (IRLS from the median), ``[C, N] → [C, 1]``.

    ``shrink`` = (model error / offset prior std)²: the Gaussian prior that the sites transmit at
    the calibrated power, which is what keeps a far, loud site from posing as a near, quiet one.
    """
    a = res.median(dim=-1, keepdim=True).values
    for _ in range(iters):
        w = 1 / torch.sqrt(1 + (res - a) ** 2 / HUBER_DB**2)
        a = (w * res).sum(-1, keepdim=True) / (w.sum(-1, keepdim=True) + shrink)
    return a


def residual_precision(rc: torch.Tensor, params: PropagationParams) -> torch.Tensor:
    """``R⁻¹`` for samples at ``rc [N, 2]``: the inverse correlation of the prior's residual field,
    ``R = (1 − ν)·exp(−d / L) + ν·I`` (nugget ν and length L measured at calibration)."""
    R = residual_correlation(rc.numpy(), float(params.residual_corr_px), float(params.residual_nugget))
    return torch.linalg.inv(torch.from_numpy(R)).float()


def _score_sets(
    base_db: torch.Tensor | None,
    cand_db: torch.Tensor,
    p: torch.Tensor,
    shrink: float,
    prec: torch.Tensor | None = None,
):
    """Misfit of ``base ⊕ candidate`` for every candidate row: ``cand_db [C, N]`` → (score [C], a [C]).

    With ``prec`` (:func:`residual_precision`) the misfit is the Gaussian-process quadratic form
    ``(r − a)ᵀ R⁻¹ (r − a)`` with the generalised-least-squares offset ``a``: spatially correlated
    residuals (a cluster of samples in one street) count as the evidence they are, not as N
    independent votes, so positions are not bent to fit local quirks of the prior. Without it,
    the independent soft-L1 misfit.
    """
    pred = (
        cand_db
        if base_db is None
        else power_sum_db(torch.stack(torch.broadcast_tensors(base_db[None], cand_db)), 0)
    )
    res = p[None] - pred
    if prec is None:
        a = _robust_offset(res, shrink)
        return _rho(res - a).sum(-1) + shrink * a[:, 0] ** 2, a[:, 0]
    a = (res @ prec).sum(-1, keepdim=True) / (prec.sum() + shrink)
    e = res - a
    return ((e @ prec) * e).sum(-1) + shrink * a[:, 0] ** 2, a[:, 0]


class _Scorer:
    """Site power at the samples for any set of positions, with the geometry done once per call.

    The search visits the same positions again and again (starts that converge to one site, the
    overlapping refinement grids, every sweep re-placing a site given the others), so each
    position's row over all samples is kept and cast once: localisation runs 2–4× faster. A row
    depends only on its own position (every ray is marched on its own), so a kept row is what
    casting again would give, up to the last bit of float32 (vectorised maths may round a value
    differently at another place in a batch; the evaluation re-run with it printed the same
    numbers, RESULTS §0.000000).
    """

    MAX_KEPT = 1 << 24  # kept values (64 MB of float32), then the memo starts afresh

    def __init__(self, buildings, samples_rc, params: PropagationParams, freq_mhz: float, step_px: float):
        self.b = torch.as_tensor(buildings)
        self.q = torch.as_tensor(samples_rc, dtype=torch.float32)
        self.params, self.freq, self.step = params, freq_mhz, step_px
        # the window's statistics for the terrain outside it: once, not at every refinement
        self.unknown = unknown_rates(self.b)
        self._rows: dict[tuple[float, float], torch.Tensor] = {}

    def _cast(self, pos: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        geom = site_geometry(self.b, pos, q, self.step, self.params.roof_fraction, self.unknown)
        with torch.no_grad():
            return site_power_db(geom, self.params, self.freq)

    def site_db(self, pos: torch.Tensor, idx=None) -> torch.Tensor:
        """``[positions, samples]`` dBm at the samples (``idx``: at that subset, not kept)."""
        if idx is not None:
            return self._cast(pos, self.q[idx])
        keys = [tuple(k) for k in pos.tolist()]
        new = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if new:
            if (len(self._rows) + len(new)) * max(1, len(self.q)) > self.MAX_KEPT:
                self._rows.clear()
                new = list(dict.fromkeys(keys))
            for k, row in zip(new, self._cast(torch.tensor(new, dtype=torch.float32), self.q)):
                self._rows[k] = row
        return torch.stack([self._rows[k] for k in keys])


def _grid(lo_r, hi_r, lo_c, hi_c, step) -> torch.Tensor:
    r = torch.arange(lo_r, hi_r + 1e-6, step, dtype=torch.float32)
    c = torch.arange(lo_c, hi_c + 1e-6, step, dtype=torch.float32)
    return torch.stack(torch.meshgrid(r, c, indexing="ij"), -1).reshape(-1, 2)


def _local_minima(score: torch.Tensor, pos: torch.Tensor, k: int, min_sep: float) -> list[int]:
    """Indices of the ``k`` best positions at least ``min_sep`` apart (greedy NMS)."""
    order = torch.argsort(score)
    keep: list[int] = []
    for i in order.tolist():
        if all(float((pos[i] - pos[j]).norm()) >= min_sep for j in keep):
            keep.append(i)
            if len(keep) == k:
                break
    return keep


def outside_distance(pos: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Distance (px) from positions ``[C, 2]`` to the grid ``[0, H−1] × [0, W−1]`` (0 inside)."""
    H, W = shape
    dr = torch.clamp(torch.maximum(-pos[:, 0], pos[:, 0] - (H - 1)), min=0)
    dc = torch.clamp(torch.maximum(-pos[:, 1], pos[:, 1] - (W - 1)), min=0)
    return torch.sqrt(dr**2 + dc**2)


def inside_log_prior(sites: list[SiteHypothesis], shape: tuple[int, int], sigma_px: float | None) -> float:
    """``log p`` of a site set under the inside prior (0 without one): ``−½(d/σ)²`` for the
    outside distance ``d`` of its site nearest the grid."""
    if sigma_px is None or not sites:
        return 0.0
    d = outside_distance(torch.tensor([h.rc() for h in sites], dtype=torch.float32), shape).min()
    return -0.5 * float(d / sigma_px) ** 2


class _InsidePrior:
    """``−2σ²_model·log prior`` of a set from the outside distance of its nearest site (misfit units)."""

    def __init__(self, shape, sigma_px: float | None):
        self.shape, self.sigma = shape, sigma_px

    def __call__(self, pos: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor | float:
        if self.sigma is None:
            return 0.0
        d = outside_distance(pos, self.shape)
        if others:
            d = torch.minimum(d, outside_distance(torch.stack(others), self.shape).min())
        return MODEL_ERROR_DB**2 * (d / self.sigma) ** 2


def _refine(
    scorer: _Scorer,
    others_db,
    p,
    start: torch.Tensor,
    bounds,
    coarse: float,
    shrink: float,
    prec,
    penalty=lambda g: 0.0,
):
    """Two local grid passes (``coarse/4`` then 1 px) around ``start``; returns (pos, score, a)."""
    best = start
    for half, step in ((coarse, max(1.0, coarse / 4)), (max(1.0, coarse / 4), 1.0)):
        g = _grid(
            float(best[0]) - half, float(best[0]) + half, float(best[1]) - half, float(best[1]) + half, step
        )
        g = g[
            (g[:, 0] >= bounds[0]) & (g[:, 0] <= bounds[1]) & (g[:, 1] >= bounds[2]) & (g[:, 1] <= bounds[3])
        ]
        sc, a = _score_sets(others_db, scorer.site_db(g), p, shrink, prec)
        sc = sc + penalty(g)
        i = int(torch.argmin(sc))
        best, best_s, best_a = g[i], float(sc[i]), float(a[i])
    return best, best_s, best_a


def _distinct(sets: list[SiteSet], tol_px: float = 2.0) -> list[SiteSet]:
    """Drop sets that repeat an earlier one (same sites within ``tol_px``): starts that grow into
    the same explanation must not count twice in the evidence-weighted mean."""
    out: list[SiteSet] = []
    for st in sets:
        a = sorted(h.rc() for h in st.sites)
        if not any(
            len(a) == len(o.sites)
            and all(math.dist(x, y) <= tol_px for x, y in zip(a, sorted(h.rc() for h in o.sites)))
            for o in out
        ):
            out.append(st)
    return out


def _sum_db(rows: list[torch.Tensor]) -> torch.Tensor | None:
    return None if not rows else power_sum_db(torch.stack(rows), 0)


def localise(
    buildings,
    samples: np.ndarray,
    params: PropagationParams,
    freq_mhz: float = 5750.0,
    settings: LocaliseParams | None = None,
    seed: int = 0,
    extra_starts=None,
) -> Localisation:
    """Find the transmitters that best explain ``samples`` (``[N, 3]`` row, col, dBm).

    ``buildings`` is the ``[H, W]`` raster (validated by the caller). Deterministic for a seed.
    ``extra_starts`` (``[S, 2]`` row, col, e.g. the learned heat map's peaks) are refined and
    grown into sets beside the coarse table's ``n_starts`` best minima.
    """
    cfg = settings or LocaliseParams()
    b = np.asarray(buildings)
    H, W = b.shape
    s = np.asarray(samples, dtype=np.float64)
    rc = torch.as_tensor(s[:, :2], dtype=torch.float32)
    p = torch.as_tensor(s[:, 2], dtype=torch.float32)
    N = p.numel()
    shrink = 0.0 if cfg.offset_sigma_db is None else (MODEL_ERROR_DB / cfg.offset_sigma_db) ** 2
    scorer = _Scorer(b, rc, params, freq_mhz, cfg.step_px)
    mr, mc = cfg.margin * H, cfg.margin * W
    bounds = (-mr, H - 1 + mr, -mc, W - 1 + mc)
    grid = _grid(*bounds, cfg.coarse_step_px)
    n_rows = torch.arange(bounds[0], bounds[1] + 1e-6, cfg.coarse_step_px).numel()

    # The coarse stage on a seeded subset; its [positions, samples] site-power table is computed
    # once and reused by every greedy step and sweep (only refinements cast new rays).
    sub = None
    if N > cfg.max_coarse_samples:
        sub = torch.as_tensor(
            np.sort(np.random.default_rng(seed).choice(N, cfg.max_coarse_samples, replace=False))
        )
    p_sub = p if sub is None else p[sub]
    prec = residual_precision(rc, params) if cfg.gp_misfit else None
    prec_sub = None if prec is None else (prec if sub is None else residual_precision(rc[sub], params))
    table = scorer.site_db(grid, sub)  # [G, n]
    sep = 2.5 * cfg.coarse_step_px

    grid_scores = None
    penalty = cfg.bic_per_site * math.log(max(N, 2)) * MODEL_ERROR_DB**2

    inside = _InsidePrior((H, W), cfg.inside_sigma_px)

    def best_site(others_full: list[torch.Tensor], n_starts: int, others_pos: list[torch.Tensor]):
        """Best positions for one more site given the others: coarse table, then refinement."""
        base_sub = _sum_db([f if sub is None else f[sub] for f in others_full])
        cs, _ = _score_sets(base_sub, table, p_sub, shrink, prec_sub)
        cs = cs + inside(grid, others_pos)
        starts = _local_minima(cs, grid, n_starts, sep)
        found = sorted(
            (
                _refine(
                    scorer,
                    _sum_db(others_full),
                    p,
                    grid[i],
                    bounds,
                    cfg.coarse_step_px,
                    shrink,
                    prec,
                    lambda g: inside(g, others_pos),
                )
                for i in starts
            ),
            key=lambda t: t[1],
        )
        return cs, found

    def grow(first_pos: torch.Tensor, first_score: float):
        """Greedy set from a first site: add sites while they pay the penalty, sweep after each."""
        pos, full, score = [first_pos], [scorer.site_db(first_pos[None])[0]], first_score
        for _k in range(1, cfg.max_sites):
            _, found = best_site(full, 2, pos)
            new_pos, new_score, _ = found[0]
            if score - new_score < penalty:
                break
            pos.append(new_pos)
            full.append(scorer.site_db(new_pos[None])[0])
            score = new_score
            # Coordinate sweep: re-place each earlier site given the others (picks made with
            # fewer sites are often compromises between two real ones).
            for _sweep in range(cfg.sweeps):
                moved = False
                for j in range(len(pos)):
                    _, found_j = best_site(full[:j] + full[j + 1 :], 2, pos[:j] + pos[j + 1 :])
                    q, sc, _ = found_j[0]
                    if sc < score - 1e-3:
                        pos[j], full[j], score, moved = q, scorer.site_db(q[None])[0], sc, True
                if not moved:
                    break
        base = _sum_db(full)
        a = float(_score_sets(None, base[None], p, shrink, prec)[1][0])
        return SiteSet(
            [SiteHypothesis(float(q[0]), float(q[1]), a, 0.0, score) for q in pos],
            a,
            score,
            float(torch.sqrt(((p - base - a) ** 2).mean())),
        )

    cs, firsts = best_site([], cfg.n_starts, [])
    if extra_starts is not None and len(extra_starts):
        lo = torch.tensor([bounds[0], bounds[2]])
        hi = torch.tensor([bounds[1], bounds[3]])
        for q in torch.as_tensor(np.asarray(extra_starts, np.float32)).reshape(-1, 2):
            firsts.append(
                _refine(
                    scorer,
                    None,
                    p,
                    torch.minimum(torch.maximum(q, lo), hi),
                    bounds,
                    cfg.coarse_step_px,
                    shrink,
                    prec,
                    lambda g: inside(g, []),
                )
            )
    grid_scores = cs.reshape(n_rows, -1).numpy()
    sets = _distinct(sorted((grow(q, sc) for q, sc, _ in firsts), key=lambda st: st.score))
    best = sets[0]
    # Fixed capacity: the best set, then other sets' sites, then the coarse map's next minima.
    out = list(best.sites)
    for st in sets[1:]:
        for h in st.sites:
            if min(math.hypot(h.row - o.row, h.col - o.col) for o in out) >= sep:
                out.append(h)
    used = torch.tensor([[h.row, h.col] for h in out])
    cs0 = torch.as_tensor(grid_scores.reshape(-1))
    for i in torch.argsort(cs0).tolist():
        if len(out) >= cfg.capacity:
            break
        if float((used - grid[i]).norm(dim=-1).min()) >= sep:
            out.append(SiteHypothesis(float(grid[i, 0]), float(grid[i, 1]), float("nan"), 0.0, float(cs0[i])))
            used = torch.cat([used, grid[i][None]])
    return Localisation(out[: cfg.capacity], len(best.sites), best.misfit_db, grid_scores, sets)


def check_sites(sites_rc, shape: tuple[int, int], margin: float) -> np.ndarray:
    """Validate user-given transmitter positions ``[T, 2]`` (row, col): finite, within the margin."""
    try:
        t = np.asarray(sites_rc, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError("transmitters must be a list of (row, col) pairs") from None
    if t.shape[0] == 0:
        raise ValueError("transmitters is empty; pass at least one (row, col) or None to localise them")
    if not np.all(np.isfinite(t)):
        raise ValueError("transmitters must be finite (row, col) values")
    H, W = shape
    lo_r, hi_r, lo_c, hi_c = -margin * H, H - 1 + margin * H, -margin * W, W - 1 + margin * W
    bad = (t[:, 0] < lo_r) | (t[:, 0] > hi_r) | (t[:, 1] < lo_c) | (t[:, 1] > hi_c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"transmitter {i} at (row, col) = ({t[i, 0]:.1f}, {t[i, 1]:.1f}) lies outside the grid margin "
            f"[{lo_r:.0f}, {hi_r:.0f}] × [{lo_c:.0f}, {hi_c:.0f}] ({margin} × the grid per side); "
            "crop a larger layout around it or drop it"
        )
    return t


def known_sites(
    buildings,
    samples: np.ndarray,
    sites_rc: np.ndarray,
    params: PropagationParams,
    freq_mhz: float,
    settings: LocaliseParams | None = None,
) -> Localisation:
    """The :class:`Localisation` of known transmitters: only the common power offset is fitted."""
    cfg = settings or LocaliseParams()
    s = np.asarray(samples, dtype=np.float64)
    p = torch.as_tensor(s[:, 2], dtype=torch.float32)
    shrink = 0.0 if cfg.offset_sigma_db is None else (MODEL_ERROR_DB / cfg.offset_sigma_db) ** 2
    scorer = _Scorer(
        np.asarray(buildings), torch.as_tensor(s[:, :2], dtype=torch.float32), params, freq_mhz, cfg.step_px
    )
    base = power_sum_db(scorer.site_db(torch.as_tensor(sites_rc, dtype=torch.float32)), 0)
    res = p - base
    prec = residual_precision(scorer.q, params) if cfg.gp_misfit else None
    sc, a_t = _score_sets(None, base[None], p, shrink, prec)
    score, a = float(sc[0]), float(a_t[0])
    misfit = float(torch.sqrt(((res - a) ** 2).mean()))
    hyps = [SiteHypothesis(float(r), float(c), a, 0.0, score) for r, c in sites_rc]
    return Localisation(hyps, len(hyps), misfit, None, [SiteSet(hyps, a, score, misfit)])
