"""The transmitter-aware map: localise → propagation prior → level fit → residual kriging.

    sets      = localise(B, samples)                       (analysis by synthesis, localise.py)
    prior_m   = 10·log10 Σ_k 10^{P_k/10} + a_m             (physics.prior, per site set m)
    map_m     = prior_m + OK(samples − prior_m)            (ordinary kriging of the residual)
    map_K     = OK(samples)                                (plain kriging: "no usable sites")
    map_L     = R̂ + OK(samples − R̂)                        (the learned map, when given)
    w         = softmax(evidence / T + log prior)          (evidence.py: GP likelihood − BIC)
    map       = Σ w_m map_m,   σ² = s²·Σ w_m (σ²_m + map_m²) − map²

:func:`physics_explanations` builds the maps and their evidence, :func:`combine` weighs them. The
learned map's evidence comes from held-out predictions (:func:`heldout_at_samples`): a network
given the samples reproduces them, so its residual there says nothing about the rest of the map.

The prior carries the long-range geometry (distance, the sector ring, shadows behind buildings);
kriging only has to fill in what the prior misses, which varies far less than the map itself.
Averaging the explanations (a posterior mean rather than one pick) measured better than the best
set alone, and lets plain kriging take over when no site set explains the samples; σ widens
where the explanations disagree.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..eval.baselines import KRIGING_MIN_SAMPLES, ordinary_kriging
from ..physics.prior import PropagationParams, power_sum_db, site_maps
from .evidence import evidence_weights, kriging_evidence, site_set_evidence
from .localise import (
    MODEL_ERROR_DB,
    Localisation,
    LocaliseParams,
    check_sites,
    inside_log_prior,
    known_sites,
    localise,
)

__all__ = [
    "ANTENNAS",
    "PhysicsSettings",
    "PhysicsMap",
    "Explanations",
    "physics_explanations",
    "combine",
    "heldout_at_samples",
    "physics_map",
]


# The transmitter types the prior can model. "sector": the calibrated set-up (masts with three
# sector antennas and a downtilt, at the calibrated power ± offset_sigma_db). "omni": an
# omnidirectional transmitter of unknown power (a WiFi access point, a small cell): no sector or
# elevation pattern, the power fitted freely to the samples; distance, walls and shadows as
# calibrated.
ANTENNAS = ("sector", "omni")


@dataclass(frozen=True)
class PhysicsSettings:
    localise: LocaliseParams = field(default_factory=LocaliseParams)
    # What the user knows of the transmitters (ANTENNAS). Not inferred by default: letting omni
    # site sets compete with the sector ones measured worse at N = 10 on BRAT region 1
    # (RESULTS §0.000000).
    antenna: str = "sector"
    residual_kriging: bool = True
    map_step_px: float = 1.0  # ray-march step of the full-grid prior
    # The mixture σ (kriging variance + spread between explanations) is set to ±2σ coverage of
    # 0.93 on 16 BRAT region 1 windows (×1.19 / 1.01 / 1.18 at N = 10 / 25 / 50, distinct sets);
    # region 2 is the check.
    sigma_scale: float = 1.2
    max_sets: int = 4  # alternative site sets averaged (1 = the best set alone)
    kriging_fallback: bool = True  # plain kriging competes as one more explanation (evidence.py)
    # Flatter than Bayes (T = 1): the mean over more hypotheses measured better on region 1 windows
    # (prior v1; MSE gain over kriging at N = 10/25/50: T = 1 1.38/1.26/1.34×, T = 16 1.47/1.42/1.44×).
    evidence_temperature: float = 16.0
    # Prior mass of the explanations that need no site (plain kriging, the learned map), shared
    # between them; the site sets share the rest. None: every explanation alike, so the fallbacks'
    # weight shrinks as more site sets are averaged. 0.5: the two kinds of explanation ("the
    # calibrated physics describes this set-up" or not) equally likely a priori; adopted with the
    # held-out evidence below (RESULTS §0.0000; region 1 alone: neutral at N = 25/50, −4 % at 10).
    fallback_share: float | None = 0.5
    # The learned map's evidence from predictions that did not see each sample: the samples split
    # into this many folds, one single-pass boost map per fold (0: the in-sample residual, which
    # flatters a network that reproduces its inputs; 10 folds measured the same as 5).
    learned_heldout_folds: int = 5
    # A learned site heat map (a checkpoint directory: a name under wifidiff_fast/checkpoints or
    # an absolute path) whose peaks join the localiser's starts; None: analysis by synthesis alone.
    heatmap: str | None = None

    def __post_init__(self):
        if self.learned_heldout_folds < 0 or self.learned_heldout_folds == 1:
            raise ValueError(
                f"learned_heldout_folds must be 0 (off) or >= 2, got {self.learned_heldout_folds}"
            )
        if self.fallback_share is not None and not 0.0 < self.fallback_share < 1.0:
            raise ValueError(f"fallback_share must be in (0, 1) or None, got {self.fallback_share}")
        if self.antenna not in ANTENNAS:
            raise ValueError(f"antenna must be one of {', '.join(ANTENNAS)}, got {self.antenna!r}")

    def site_model(self, params: PropagationParams) -> tuple[PropagationParams, LocaliseParams]:
        """The prior's parameters and the search settings for this set-up's ``antenna``: an
        omni transmitter drops the sector pattern and frees the power."""
        if self.antenna == "omni":
            return dataclasses.replace(params, omni=True), dataclasses.replace(
                self.localise, offset_sigma_db=None
            )
        return params, self.localise

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PhysicsSettings:
        d = dict(d)
        try:
            loc = LocaliseParams(**d.pop("localise", {}))
            return cls(localise=loc, **d)
        except TypeError as exc:
            raise ValueError(f"bad physics settings in the checkpoint: {exc}") from None


@dataclass
class PhysicsMap:
    rss_dbm: np.ndarray  # float32 [H, W]
    sigma_db: np.ndarray  # float32 [H, W] 1-σ uncertainty
    prior_dbm: np.ndarray  # float32 [H, W] the prior alone (with its fitted level)
    localisation: Localisation
    weights: np.ndarray  # float32 [sets (+ kriging) (+ learned)] weight of each explanation
    timings_ms: dict = field(default_factory=dict)  # localise, prior, kriging


@dataclass
class Explanations:
    """The candidate explanations of one request's samples, before weighting (site sets first)."""

    maps: list[np.ndarray]  # float64 [H, W] each: prior_m + OK(residual), kriging, learned + OK
    variances: list[np.ndarray]  # float64 [H, W] each: the kriging variance of each map
    evidence: np.ndarray  # float64 [M]: penalised log-likelihood of each (evidence.py)
    n_sets: int  # how many of them are site sets
    localisation: Localisation
    prior_best: np.ndarray  # float64 [H, W]: the best set's prior alone
    timings_ms: dict = field(default_factory=dict)


def _explanation_prior(cfg: PhysicsSettings, n_sets: int, n_maps: int) -> np.ndarray | None:
    """Log prior of each explanation (the sets first, then the fallbacks), or None (all alike)."""
    n_fallback = n_maps - n_sets
    if cfg.fallback_share is None or n_fallback == 0:
        return None
    share = float(cfg.fallback_share)
    return np.log([(1 - share) / n_sets] * n_sets + [share / n_fallback] * n_fallback)


def _krige_residual(buildings: np.ndarray, samples_rc: np.ndarray, residual: np.ndarray):
    """Ordinary kriging of the residual onto every pixel: (value, variance) ``[H, W]`` each (the
    baselines' PyKrige call; the mean and variance of the residual when it cannot krige)."""
    H, W = buildings.shape
    flat = (
        np.full((H, W), float(np.mean(residual))),
        np.full((H, W), float(np.var(residual)) if len(residual) > 1 else 0.0),
    )
    if len(residual) < KRIGING_MIN_SAMPLES or np.ptp(residual) == 0.0:
        return flat
    rr, cc = np.mgrid[:H, :W]
    out = ordinary_kriging(np.column_stack([samples_rc, residual]), np.column_stack([rr.ravel(), cc.ravel()]))
    return flat if out is None else (out[0].reshape(H, W), out[1].reshape(H, W))


@functools.lru_cache(maxsize=4)
def _heatmap_net(name: str):
    from ..models.heatmap import load_heatmap

    path = Path(name)
    if not path.is_absolute():  # a name: one of the package's checkpoints
        path = Path(__file__).resolve().parent.parent / "checkpoints" / name
    return load_heatmap(path)


def _heatmap_starts(name: str, buildings, samples, freq_mhz: float, k: int = 3) -> np.ndarray:
    """The learned heat map's ``k`` strongest peaks ``[k, 2]`` (row, col) as localiser starts."""
    from ..models.heatmap import predict_sites

    return predict_sites(_heatmap_net(name), buildings, samples, freq_mhz, k)[:, :2]


def heldout_at_samples(predict, samples: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Each sample's value as predicted without it: ``[N]``.

    The samples are split into ``folds`` seeded folds; ``predict(list of sample arrays)`` returns
    one ``[H, W]`` map per array (one batch: the learned map of the samples outside each fold), and
    each sample takes its value from the map that did not see it. A network that was given a
    sample reproduces it almost exactly, so only these values say how well it predicts the rest.
    """
    n = len(samples)
    folds = max(2, min(int(folds), n))
    fold = np.random.default_rng(seed).permutation(n) % folds
    maps = predict([samples[fold != f] for f in range(folds)])
    rows, cols = samples[:, 0].astype(np.int64), samples[:, 1].astype(np.int64)
    out = np.empty(n, np.float64)
    for f, m in enumerate(maps):
        at = fold == f
        out[at] = np.asarray(m, np.float64)[rows[at], cols[at]]
    return out


def physics_explanations(
    buildings: np.ndarray,
    samples: np.ndarray,
    params: PropagationParams,
    freq_mhz: float = 5750.0,
    settings: PhysicsSettings | None = None,
    seed: int = 0,
    transmitters=None,
    learned_dbm: np.ndarray | None = None,
    learned_heldout: np.ndarray | None = None,
) -> Explanations:
    """Every explanation of validated ``samples [N, 3]`` over ``buildings [H, W]``, unweighted.

    ``learned_dbm`` (``[H, W]``, e.g. the boost network's map R̂) joins the explanations as
    ``R̂ + OK(samples − R̂)`` with the kriging-model evidence of its residual: where the calibrated
    physics does not describe the set-up (another transmitter type, another power), the learned
    map takes over instead of plain kriging. R̂ has seen the samples, so the residual at them is
    optimistic; ``learned_heldout`` (``[N]``, :func:`heldout_at_samples`) gives the evidence the
    residual of predictions that did not see each sample instead.

    ``transmitters`` (``[T, 2]`` row, col; may lie outside the grid within the search margin)
    skips the localisation when the sites are known.

    The explanations are the localiser's best ``settings.max_sets`` site sets, then plain kriging
    and the learned map where they apply; :func:`combine` weights them.
    """
    cfg = settings or PhysicsSettings()
    params, search = cfg.site_model(params)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if transmitters is not None:
        sites = check_sites(transmitters, buildings.shape, search.margin)
        loc = known_sites(buildings, samples, sites, params, freq_mhz, search)
    else:
        starts = None if cfg.heatmap is None else _heatmap_starts(cfg.heatmap, buildings, samples, freq_mhz)
        loc = localise(buildings, samples, params, freq_mhz, search, seed, extra_starts=starts)
    timings["localise"] = (time.perf_counter() - t0) * 1e3
    rows, cols = samples[:, 0].astype(np.int64), samples[:, 1].astype(np.int64)
    rc = samples[:, :2].astype(np.float64)
    # Every candidate explanation: the best site sets, plain kriging, the learned map (if given).
    maps, variances, evidence, prior_best = [], [], [], None
    cache: dict[tuple[float, float], torch.Tensor] = {}  # sets often share a site: one map each
    for st in loc.sets[: cfg.max_sets]:
        t0 = time.perf_counter()
        for h in st.sites:
            if h.rc() not in cache:
                cache[h.rc()] = site_maps(
                    buildings, np.array([h.rc()], np.float32), freq_mhz, params, step_px=cfg.map_step_px
                )[0]
        prior = (power_sum_db(torch.stack([cache[h.rc()] for h in st.sites])) + st.offset_db).numpy()
        prior = prior.astype(np.float64)
        timings["prior"] = timings.get("prior", 0.0) + (time.perf_counter() - t0) * 1e3
        if prior_best is None:
            prior_best = prior
        residual = samples[:, 2] - prior[rows, cols]
        log_prior = (
            0.0
            if transmitters is not None
            else inside_log_prior(st.sites, buildings.shape, search.inside_sigma_px)
        )
        evidence.append(
            site_set_evidence(
                residual, rc, MODEL_ERROR_DB, params.residual_corr_px, params.residual_nugget, len(st.sites)
            )
            + log_prior
        )
        t0 = time.perf_counter()
        if cfg.residual_kriging:
            fix, var = _krige_residual(buildings, samples[:, :2], residual)
        else:
            fix, var = (
                np.full(prior.shape, float(np.mean(residual))),
                np.full(prior.shape, float(np.var(residual))),
            )
        timings["kriging"] = timings.get("kriging", 0.0) + (time.perf_counter() - t0) * 1e3
        maps.append(prior + fix)
        variances.append(var)
    if cfg.kriging_fallback and transmitters is None:
        t0 = time.perf_counter()
        kmap, kvar = _krige_residual(buildings, samples[:, :2], samples[:, 2].astype(np.float64))
        timings["kriging"] = timings.get("kriging", 0.0) + (time.perf_counter() - t0) * 1e3
        maps.append(kmap)
        variances.append(kvar)
        evidence.append(kriging_evidence(samples[:, 2].astype(np.float64), rc))
    if learned_dbm is not None and transmitters is None:
        t0 = time.perf_counter()
        base = np.asarray(learned_dbm, dtype=np.float64)
        base = np.where(np.isfinite(base), base, np.nanmean(base))  # buildings carry NaN
        residual = samples[:, 2] - base[rows, cols]
        fix, var = _krige_residual(buildings, samples[:, :2], residual)
        timings["kriging"] = timings.get("kriging", 0.0) + (time.perf_counter() - t0) * 1e3
        maps.append(base + fix)
        variances.append(var)
        if learned_heldout is not None:
            residual = samples[:, 2] - np.asarray(learned_heldout, np.float64)
        evidence.append(kriging_evidence(residual, rc))
    return Explanations(
        maps,
        variances,
        np.asarray(evidence, np.float64),
        min(len(loc.sets), cfg.max_sets),
        loc,
        prior_best,
        timings,
    )


def combine(ex: Explanations, buildings: np.ndarray, settings: PhysicsSettings | None = None) -> PhysicsMap:
    """The posterior mean over the explanations, weighted by their evidence; σ combines each
    one's kriging variance with the spread between them (law of total variance)."""
    cfg = settings or PhysicsSettings()
    maps, variances = ex.maps, ex.variances
    w = evidence_weights(
        ex.evidence, cfg.evidence_temperature, log_prior=_explanation_prior(cfg, ex.n_sets, len(maps))
    )
    mean = np.zeros(buildings.shape)
    second = np.zeros(buildings.shape)
    for wi, m, v in zip(w, maps, variances):
        if wi > 0:
            mean += wi * m
            second += wi * (v + m**2)
    sigma = cfg.sigma_scale * np.sqrt(np.clip(second - mean**2, 0, None))
    mean[buildings == 1] = np.nan
    sigma[buildings == 1] = np.nan
    prior_best = ex.prior_best.copy()
    prior_best[buildings == 1] = np.nan
    return PhysicsMap(
        mean.astype(np.float32),
        sigma.astype(np.float32),
        prior_best.astype(np.float32),
        ex.localisation,
        w.astype(np.float32),
        {k: round(v, 3) for k, v in ex.timings_ms.items()},
    )


def physics_map(
    buildings: np.ndarray,
    samples: np.ndarray,
    params: PropagationParams,
    freq_mhz: float = 5750.0,
    settings: PhysicsSettings | None = None,
    **explanation_args,
) -> PhysicsMap:
    """The transmitter-aware estimate for validated ``buildings [H, W]`` and ``samples [N, 3]``:
    :func:`physics_explanations` weighted by :func:`combine`. ``explanation_args`` (``seed``,
    ``transmitters``, ``learned_dbm``, ``learned_heldout``) go to :func:`physics_explanations`."""
    ex = physics_explanations(buildings, samples, params, freq_mhz, settings, **explanation_args)
    return combine(ex, buildings, settings)
