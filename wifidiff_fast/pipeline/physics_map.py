"""The transmitter-aware map: localise → propagation prior → level fit → residual kriging.

    sites     = localise(B, samples)                       (analysis by synthesis, localise.py)
    prior     = 10·log10 Σ_k 10^{P_k/10} + a               (physics.prior, one offset a)
    residual  = samples − prior at the sample pixels
    map       = prior + OK(residual)                       (ordinary kriging, PyKrige)
    σ(q)      = √(σ²_OK(q) + σ²_loc)                       (kriging variance + hypothesis spread)

The prior carries the long-range geometry (distance, the sector ring, shadows behind buildings);
kriging only has to fill in what the prior misses, which varies far less than the map itself.
``σ_loc`` is the per-pixel spread of the prior across the alternative site hypotheses weighted by
their misfit, so the uncertainty widens where the transmitter position is in doubt.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..physics.prior import PropagationParams, prior_map
from .localise import MODEL_ERROR_DB, Localisation, LocaliseParams, check_sites, known_sites, localise

__all__ = ["PhysicsSettings", "PhysicsMap", "physics_map"]

KRIGING_MIN_SAMPLES = 5


@dataclass(frozen=True)
class PhysicsSettings:
    localise: LocaliseParams = field(default_factory=LocaliseParams)
    residual_kriging: bool = True
    map_step_px: float = 1.0       # ray-march step of the full-grid prior
    # Kriging variance from N ≤ 50 residuals is too narrow: ×1.9 gives ±2σ coverage of 0.90 at
    # N = 10 and 25 on BRAT region 1 windows (0.97 at N = 50); region 2 is the check (RESULTS.md).
    sigma_scale: float = 1.9
    max_sets: int = 4              # alternative site sets averaged (1 = the best set alone)
    set_temperature: float = 2.0   # likelihood temperature of the set weights

    def to_dict(self) -> dict:
        d = asdict(self)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PhysicsSettings":
        d = dict(d)
        try:
            loc = LocaliseParams(**d.pop("localise", {}))
            return cls(localise=loc, **d)
        except TypeError as exc:
            raise ValueError(f"bad physics settings in the checkpoint: {exc}") from None


@dataclass
class PhysicsMap:
    rss_dbm: np.ndarray            # float32 [H, W]
    sigma_db: np.ndarray           # float32 [H, W] 1-σ uncertainty
    prior_dbm: np.ndarray          # float32 [H, W] the prior alone (with its fitted level)
    localisation: Localisation
    set_weights: np.ndarray        # float32 [n_sets] weight of each alternative set in the mean


def _krige_residual(buildings: np.ndarray, samples_rc: np.ndarray, residual: np.ndarray):
    """Ordinary kriging of the residual onto every pixel: (value, variance) ``[H, W]`` each."""
    H, W = buildings.shape
    if len(residual) < KRIGING_MIN_SAMPLES or np.ptp(residual) == 0.0:
        m = float(np.mean(residual))
        var = float(np.var(residual)) if len(residual) > 1 else 0.0
        return np.full((H, W), m), np.full((H, W), var)
    from pykrige.ok import OrdinaryKriging

    rr, cc = np.mgrid[:H, :W]
    for pseudo_inv in (False, True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok = OrdinaryKriging(samples_rc[:, 1].astype(float), samples_rc[:, 0].astype(float), residual,
                                     variogram_model="exponential", exact_values=True, pseudo_inv=pseudo_inv)
                v, ss = ok.execute("points", cc.reshape(-1).astype(float), rr.reshape(-1).astype(float),
                                   backend="vectorized")
            v, ss = np.asarray(v, dtype=np.float64), np.asarray(ss, dtype=np.float64)
            if np.all(np.isfinite(v)) and np.all(np.isfinite(ss)):
                return v.reshape(H, W), np.clip(ss, 0, None).reshape(H, W)
        except (np.linalg.LinAlgError, ValueError, RuntimeError, FloatingPointError):
            continue
    return np.full((H, W), float(np.mean(residual))), np.full((H, W), float(np.var(residual)))


def set_weights(loc: Localisation, temperature: float, max_sets: int) -> np.ndarray:
    """Posterior weights of the alternative site sets: ``exp(−Δscore / (2·T·σ²_model))``.

    The score is a robust sum of squared residuals in dB², so with ``T = 1`` this is the Gaussian
    likelihood at the prior's typical error; weights below 1e-3 are dropped.
    """
    sc = np.array([st.score for st in loc.sets[:max_sets]], dtype=np.float64)
    w = np.exp(-(sc - sc.min()) / (2 * max(temperature, 1e-9) * MODEL_ERROR_DB**2))
    w[w < 1e-3] = 0.0
    return w / w.sum()


def physics_map(buildings: np.ndarray, samples: np.ndarray, params: PropagationParams,
                freq_mhz: float = 5750.0, settings: PhysicsSettings | None = None, seed: int = 0,
                transmitters=None) -> PhysicsMap:
    """The transmitter-aware estimate for validated ``buildings [H, W]`` and ``samples [N, 3]``.

    ``transmitters`` (``[T, 2]`` row, col; may lie outside the grid within the search margin)
    skips the localisation when the sites are known.

    The map is the posterior mean over the localiser's alternative site sets (one set when
    ``settings.max_sets == 1``); σ combines each set's kriging variance with the spread between
    sets (law of total variance).
    """
    cfg = settings or PhysicsSettings()
    if transmitters is not None:
        sites = check_sites(transmitters, buildings.shape, cfg.localise.margin)
        loc = known_sites(buildings, samples, sites, params, freq_mhz, cfg.localise)
    else:
        loc = localise(buildings, samples, params, freq_mhz, cfg.localise, seed)
    w = set_weights(loc, cfg.set_temperature, cfg.max_sets)
    rows, cols = samples[:, 0].astype(np.int64), samples[:, 1].astype(np.int64)
    mean = np.zeros(buildings.shape)
    second = np.zeros(buildings.shape)
    prior_best = None
    for wi, st in zip(w, loc.sets):
        if wi == 0.0:
            continue
        sites = np.array([h.rc() for h in st.sites], dtype=np.float32)
        prior = prior_map(buildings, sites, freq_mhz, params, offset_db=st.offset_db,
                          step_px=cfg.map_step_px).numpy().astype(np.float64)
        if prior_best is None:
            prior_best = prior
        residual = samples[:, 2] - prior[rows, cols]
        if cfg.residual_kriging:
            fix, var = _krige_residual(buildings, samples[:, :2], residual)
        else:
            fix, var = np.full(prior.shape, float(np.mean(residual))), np.full(prior.shape, float(np.var(residual)))
        est = prior + fix
        mean += wi * est
        second += wi * (var + est**2)
    sigma = cfg.sigma_scale * np.sqrt(np.clip(second - mean**2, 0, None))
    mean[buildings == 1] = np.nan
    sigma[buildings == 1] = np.nan
    prior_best[buildings == 1] = np.nan
    return PhysicsMap(mean.astype(np.float32), sigma.astype(np.float32), prior_best.astype(np.float32), loc,
                      w.astype(np.float32))
