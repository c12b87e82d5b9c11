"""Model evidence: how much the samples support each explanation, the transmitter-aware ones and
plain kriging, so the estimator can average them instead of trusting a wrong localisation.

Both are Gaussian-process models of the N sample values ``y`` at pixels ``q``:

* a **site set** ``m``: ``y = prior_m(q) + a + ε``, ``ε ~ GP(0, σ²·R)`` with the calibrated
  residual correlation ``R = (1 − ν)·exp(−d/L) + ν·I`` and ``σ`` the prior's calibrated error.
  Its fitted parameters are the site positions and the offset: ``k = 2·n_sites + 1``.
* **kriging**: ``y = μ + GP(0, s²·R_ℓ)``, with ``μ`` and ``s²`` profiled out and the range ``ℓ``
  the best of a grid: ``k = 3``.

Each gets the BIC-penalised log-likelihood ``log p(y | θ̂) − ½·k·log N``; the weights are
``softmax(evidence / T)``. With few samples a set that bent its sites to fit them pays for it,
and kriging takes the weight back; with many samples the physics wins where it explains the data.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "residual_correlation",
    "site_set_evidence",
    "kriging_likelihood",
    "kriging_evidence",
    "evidence_weights",
]

KRIGING_RANGES_PX = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
KRIGING_NUGGET = 0.05


def residual_correlation(rc: np.ndarray, length: float, nugget: float) -> np.ndarray:
    """``R = (1 − ν)·exp(−d/L) + ν·I`` for points ``rc [N, 2]`` (float64 ``[N, N]``)."""
    rc = np.asarray(rc, dtype=np.float64)
    d = np.linalg.norm(rc[:, None, :] - rc[None, :, :], axis=-1)
    return (1 - nugget) * np.exp(-d / length) + nugget * np.eye(len(rc))


def _quad_logdet(R: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """``eᵀR⁻¹e`` and ``log|R|`` through a Cholesky factor."""
    L = np.linalg.cholesky(R)
    z = np.linalg.solve(L, e)
    return float(z @ z), float(2 * np.log(np.diag(L)).sum())


def site_set_evidence(
    residual: np.ndarray, rc: np.ndarray, sigma_db: float, corr_px: float, nugget: float, n_sites: int
) -> float:
    """Penalised log-likelihood of one site set from its residual at the samples (offset removed)."""
    n = len(residual)
    q, logdet = _quad_logdet(residual_correlation(rc, corr_px, nugget), residual)
    ll = -0.5 * (q / sigma_db**2 + logdet + 2 * n * math.log(sigma_db) + n * math.log(2 * math.pi))
    return ll - 0.5 * (2 * n_sites + 1) * math.log(n)


def kriging_likelihood(values: np.ndarray, rc: np.ndarray, length: float) -> float:
    """Log-likelihood of the kriging model with range ``length``, mean and sill profiled."""
    n = len(values)
    one = np.ones(n)
    R = residual_correlation(rc, length, KRIGING_NUGGET)
    Ri1 = np.linalg.solve(R, one)
    mu = float(Ri1 @ values / (one @ Ri1))
    q, logdet = _quad_logdet(R, values - mu)
    s2 = max(q / n, 1e-6)
    return -0.5 * (n * math.log(s2) + logdet + n + n * math.log(2 * math.pi))


def kriging_evidence(values: np.ndarray, rc: np.ndarray) -> float:
    """Penalised log-likelihood of the kriging model (best range of a grid, mean and sill profiled)."""
    best = max(kriging_likelihood(values, rc, length) for length in KRIGING_RANGES_PX)
    return best - 0.5 * 3 * math.log(len(values))


def evidence_weights(
    evidence: list[float], temperature: float = 1.0, floor: float = 1e-3, log_prior=None
) -> np.ndarray:
    """``softmax(evidence / T + log_prior)`` with weights below ``floor`` dropped (and the rest
    renormalised); ``log_prior`` (one per explanation) defaults to equal prior mass."""
    e = np.asarray(evidence, dtype=np.float64) / max(temperature, 1e-9)
    if log_prior is not None:
        e = e + np.asarray(log_prior, dtype=np.float64)
    w = np.exp(e - e.max())
    w /= w.sum()
    w[w < floor] = 0.0
    return w / w.sum()
