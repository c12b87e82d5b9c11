"""Would held-out evidence for the site sets weigh the explanations better? Offline, on files
written by ``scripts/dump_explanations.py``.

The shipped weighting scores the learned map by predictions that did not see each sample
(``heldout_at_samples``) but the site sets in-sample (``evidence.site_set_evidence``: their
positions were fitted to those very samples, with a BIC penalty for it). This script scores every
explanation alike, by 5-fold cross-validation with the folds of ``heldout_at_samples``:

* a site set: per fold, the power offset (the localiser's GLS fit with its prior) and the
  calibrated residual Gaussian process fitted on the other folds predict the fold. ``fixed``: the
  sites where the localiser put them (it saw every sample); ``refit``: each site first re-placed
  on the other folds only (one local sweep, ``_refine`` on coarse/4 then 1 px grids);
* plain kriging: a GP with mean, sill and range (the evidence grid's) fitted on the other folds;
* the learned map: its held-out predictions (already in the dump).

and weighs them by ``softmax(score / T + log prior)`` with the shipped prior share, for three
scores: ``gp σ fixed`` (the log predictive density with the prior's calibrated error σ),
``gp σ fitted`` (σ profiled on the training folds) and ``cv mse`` (−N/2·log of the
cross-validated MSE, one rule for every explanation).

    python scripts/heldout_set_evidence.py /tmp/expl_r1 [/tmp/expl_r2 ...]

Prints the MSE gain over the best of IDW and kriging per N (as ``weigh_explanations.py``).
"""

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from wifidiff_fast.physics.prior import load_calibration, power_sum_db
from wifidiff_fast.pipeline.evidence import (
    KRIGING_NUGGET,
    KRIGING_RANGES_PX,
    evidence_weights,
    kriging_likelihood,
    residual_correlation,
)
from wifidiff_fast.pipeline.localise import (
    MODEL_ERROR_DB,
    LocaliseParams,
    _refine,
    _Scorer,
    _sum_db,
    residual_precision,
)
from wifidiff_fast.pipeline.physics_map import PhysicsSettings, _explanation_prior

FOLDS = 5


def folds_of(n: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """The fold of each sample, as ``heldout_at_samples`` draws them."""
    k = max(2, min(FOLDS, n))
    return np.random.default_rng(seed).permutation(n) % k, k


def gp_predict(rcT, eT, rcV, length, nugget, fit_mean):
    """GP prediction at ``rcV`` from values ``eT`` at ``rcT`` with correlation
    ``(1 − ν)·exp(−d/L) + ν·I``: (mean, variance / sill, sill profiled on T)."""
    Ri = np.linalg.inv(residual_correlation(rcT, length, nugget))
    k = (1 - nugget) * np.exp(-np.linalg.norm(rcT[:, None] - rcV[None], axis=-1) / length)
    one = np.ones(len(eT))
    mu = float(one @ Ri @ eT / (one @ Ri @ one)) if fit_mean else 0.0
    e = eT - mu
    sill = max(float(e @ Ri @ e) / len(eT), 1e-6)
    var = 1.0 - np.einsum("tv,tu,uv->v", k, Ri, k)
    if fit_mean:  # the mean's own uncertainty (ordinary kriging)
        var = var + (1 - one @ Ri @ k) ** 2 / (one @ Ri @ one)
    return mu + k.T @ Ri @ e, np.maximum(var, 1e-6), sill


def log_density(y, mean, var) -> float:
    return float(np.sum(-0.5 * (np.log(2 * np.pi * var) + (y - mean) ** 2 / var)))


def cv_mse_score(residual) -> float:
    """−N/2·(log 2π·MSE + 1): the Gaussian log density of the cross-validated residuals."""
    return -0.5 * len(residual) * (math.log(2 * math.pi * max(np.mean(residual**2), 1e-6)) + 1)


def scores(f: dict, params, refit: bool) -> dict:
    """Every explanation's cross-validated scores (site sets first, then kriging, then learned)."""
    cfg = LocaliseParams()
    shrink = (MODEL_ERROR_DB / cfg.offset_sigma_db) ** 2
    s = f["samples"].astype(np.float64)
    rc, p, n = s[:, :2], s[:, 2], len(s)
    b, freq = f["buildings"], float(f["freq_mhz"])
    fold, k = folds_of(n)
    scorer = _Scorer(b, torch.as_tensor(rc, dtype=torch.float32), params, freq, 1.0)
    H, W = b.shape
    bounds = (-cfg.margin * H, H - 1 + cfg.margin * H, -cfg.margin * W, W - 1 + cfg.margin * W)
    L, nug = float(params.residual_corr_px), float(params.residual_nugget)
    out = defaultdict(list)
    for sites in f["set_sites"][: int(f["n_sets"])]:
        pos = [torch.tensor(q, dtype=torch.float32) for q in sites[np.isfinite(sites[:, 0])]]
        fixed_P = power_sum_db(scorer.site_db(torch.stack(pos)), 0).double().numpy()
        lp_fixed = lp_fitted = 0.0
        cv_res = np.empty(n)
        for fi in range(k):
            T, V = fold != fi, fold == fi
            P = fixed_P
            if refit:  # re-place each site on the training folds only
                sub = _Scorer(b, torch.as_tensor(rc[T], dtype=torch.float32), params, freq, 1.0)
                pT, precT = torch.as_tensor(p[T], dtype=torch.float32), residual_precision(sub.q, params)
                moved = list(pos)
                rows = [sub.site_db(q[None])[0] for q in moved]
                for j in range(len(moved)):
                    others = _sum_db(rows[:j] + rows[j + 1 :])
                    moved[j], _, _ = _refine(sub, others, pT, moved[j], bounds, 4.0, shrink, precT)
                    rows[j] = sub.site_db(moved[j][None])[0]
                P = power_sum_db(scorer.site_db(torch.stack(moved)), 0).double().numpy()
            r = p - P
            Ri = np.linalg.inv(residual_correlation(rc[T], L, nug))
            a = float((r[T] @ Ri).sum() / (Ri.sum() + shrink))  # the localiser's offset fit
            mean, var, sill = gp_predict(rc[T], r[T] - a, rc[V], L, nug, fit_mean=False)
            lp_fixed += log_density(r[V] - a, mean, var * MODEL_ERROR_DB**2)
            lp_fitted += log_density(r[V] - a, mean, var * sill)
            cv_res[V] = r[V] - a - mean
        out["gp σ fixed"].append(lp_fixed)
        out["gp σ fitted"].append(lp_fitted)
        out["cv mse"].append(cv_mse_score(cv_res))
    lp_k, cv_k = 0.0, np.empty(n)
    for fi in range(k):
        T, V = fold != fi, fold == fi

        length = max(KRIGING_RANGES_PX, key=lambda L, T=T: kriging_likelihood(p[T], rc[T], L))
        mean, var, sill = gp_predict(rc[T], p[T], rc[V], length, KRIGING_NUGGET, fit_mean=True)
        lp_k += log_density(p[V], mean, var * sill)
        cv_k[V] = p[V] - mean
    for name in ("gp σ fixed", "gp σ fitted"):
        out[name].append(lp_k)
    out["cv mse"].append(cv_mse_score(cv_k))
    if bool(f["has_learned"]):
        learned = cv_mse_score(p - f["learned_heldout"])  # a network: only its held-out residuals
        for name in out:
            out[name].append(learned)
    return {name: np.array(v) for name, v in out.items()}


def weigh(f: dict, evidence: np.ndarray, temperature: float, max_sets: int = 4) -> np.ndarray:
    """The shipped combination (``physics_map.combine``: the best ``max_sets`` sets and the
    fallbacks, the fallback prior share) for any evidence."""
    n_all = int(f["n_sets"])
    n_sets = min(n_all, max_sets)
    keep = list(range(n_sets)) + list(range(n_all, len(f["maps"])))
    prior = _explanation_prior(PhysicsSettings(), n_sets, len(keep))
    w = np.zeros(len(f["maps"]))
    w[keep] = evidence_weights(evidence[keep], temperature, log_prior=prior)
    return np.tensordot(w, f["maps"], axes=1)


def main(folders: list[str]) -> None:
    torch.set_num_threads(1)
    params = load_calibration()
    for folder in folders:
        mse = defaultdict(lambda: defaultdict(list))
        for path in sorted(Path(folder).glob("*.npz")):
            f = dict(np.load(path))
            n = int(path.stem.rsplit("_n", 1)[1])
            mask, truth = f["buildings"] == 0, f["truth"].astype(np.float64)

            def err(pred, mask=mask, truth=truth):
                return float(np.mean((pred[mask] - truth[mask]) ** 2))

            mse[n]["idw"].append(err(f["idw"]))
            mse[n]["kriging"].append(err(f["kriging"]))
            shipped = f["evidence"].copy()
            if bool(f["has_learned"]):
                shipped[-1] = float(f["learned_evidence_heldout"])
            mse[n]["shipped (in-sample sets, T = 16)"].append(err(weigh(f, shipped, 16.0)))
            if bool(f["has_learned"]):  # what all weight on it would give (R̂ + its kriged residual)
                mse[n]["the learned explanation alone"].append(err(f["maps"][-1]))
            for refit in (False, True):
                for name, ev in scores(f, params, refit).items():
                    for t in (8.0, 16.0):
                        label = f"{name}, {'refit' if refit else 'fixed'} sites, T = {t:g}"
                        mse[n][label].append(err(weigh(f, ev, t)))
        ns = sorted(mse)
        print(f"{folder}: MSE gain over the best peer (maps per N: {[len(mse[n]['idw']) for n in ns]})")
        print(f"{'weighting':44s}" + "".join(f"{'N=' + str(n):>9s}" for n in ns))
        for label in mse[ns[0]]:
            if label in ("idw", "kriging"):
                continue
            gains = [
                min(np.mean(mse[n]["idw"]), np.mean(mse[n]["kriging"])) / np.mean(mse[n][label]) for n in ns
            ]
            print(f"{label:44s}" + "".join(f"{g:8.2f}x" for g in gains))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
