"""Calibrate the propagation prior's scalars on one BRAT region, check them on another.

    python -m wifidiff_fast.physics.calibrate --region 1 --check 2 --out calibration.json

The sites are the region's known ``tx_rc``; the fit uses a seeded subset of open pixels in all
five bands at once (one parameter set must hold across frequency) and minimises a robust
(soft-L1, 6 dB scale) loss on the power sum of the three sites, with Adam on the
:class:`~.prior.PropagationParams` fields listed in ``fit_names``. The check region is never
seen by the fit; its error is reported with the true sites and no samples (``raw``), and after one
constant per map (``offset``, what a single sample-based level fit can reach).

After the scalars, the correction curves of :mod:`.curves` (prior version 3) are fitted by linear
least squares on the scalars' residual, on points where one site dominates; ``--no-curves``
keeps a version-2 prior (scalars only).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from ..data.loaders import load_brat_region
from .curves import curve_features, fit_curves, plot_curves
from .prior import (
    CALIBRATION_PATH,
    PRIOR_VERSION,
    PropagationParams,
    power_sum_db,
    site_geometry,
    site_power_db,
)

# Bounds keep the fit physical (a negative beamwidth or cap would still lower the loss).
BOUNDS = {
    "path_loss_exp": (1.5, 4.5),
    "freq_db_per_decade": (0.0, 40.0),
    "height_px": (0.2, 10.0),
    "tilt_deg": (0.0, 30.0),
    "vbeam_deg": (3.0, 40.0),
    "v_sla_db": (5.0, 40.0),
    "wall_db": (0.0, 30.0),
    "pen_db_per_px": (0.0, 5.0),
    "cap_db": (1.0, 60.0),
    "shadow_recovery_px": (1.0, 1e4),
    "loss_freq_exp": (-1.0, 2.0),
}


def region_points(region, n_points: int, seed: int):
    """A seeded subset of the region's open pixels: ``(rc [P, 2], rss [5, P])``."""
    open_rc = np.argwhere(region.buildings == 0)
    rng = np.random.default_rng(seed)
    pick = open_rc[rng.choice(len(open_rc), size=min(n_points, len(open_rc)), replace=False)]
    return pick, region.rss_dbm[:, pick[:, 0], pick[:, 1]]


def predict(geom, params, freqs) -> torch.Tensor:
    """``[F, P]`` prior power sum at the points, every band."""
    return torch.stack([power_sum_db(site_power_db(geom, params, f)) for f in freqs])


def fit(
    region,
    init: PropagationParams,
    n_points: int = 12000,
    steps: int = 600,
    seed: int = 0,
    log=print,
    with_loss: bool = False,
):
    """Adam on the ``fit_names`` fields from ``init``; the fitted params (and the final robust
    loss when ``with_loss``)."""
    rc, rss = region_points(region, n_points, seed)
    geom = site_geometry(region.buildings, region.tx_rc, rc, receiver_fraction=init.roof_fraction)
    target = torch.as_tensor(rss, dtype=torch.float32)
    freqs = region.freqs_mhz.tolist()
    theta = {k: torch.tensor(float(getattr(init, k)), requires_grad=True) for k in init.fit_names}
    fixed = {k: v for k, v in init.to_dict().items() if k not in theta}
    opt = torch.optim.Adam(theta.values(), lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for it in range(steps):
        opt.zero_grad()
        res = predict(geom, {**fixed, **theta}, freqs) - target
        loss = (2 * 36.0 * (torch.sqrt(1 + res**2 / 36.0) - 1)).mean()  # soft-L1, 6 dB scale
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            for k, (lo, hi) in BOUNDS.items():
                if k in theta:
                    theta[k].clamp_(lo, hi)
        if it % 100 == 0 or it == steps - 1:
            log(
                f"  step {it:4d}  robust loss {loss.item():8.3f}  rmse {res.pow(2).mean().sqrt().item():6.2f} dB"
            )
    fitted = PropagationParams(**{**fixed, **{k: float(v.detach()) for k, v in theta.items()}})
    return (fitted, float(loss.detach())) if with_loss else fitted


def score(region, params: PropagationParams, n_points: int = 30000, seed: int = 1) -> dict:
    """RMSE per band with the true sites and no samples (raw) and after one offset per band."""
    rc, rss = region_points(region, n_points, seed)
    geom = site_geometry(region.buildings, region.tx_rc, rc, receiver_fraction=params.roof_fraction)
    with torch.no_grad():
        pred = predict(geom, params, region.freqs_mhz.tolist()).numpy()
    out = {}
    for j, f in enumerate(region.freqs_mhz.tolist()):
        r = pred[j] - rss[j]
        out[int(f)] = {
            "raw_rmse_db": float(np.sqrt(np.mean(r**2))),
            "offset_rmse_db": float(np.std(r)),
            "bias_db": float(np.mean(r)),
        }
    return out


def residual_correlation(
    region, params: PropagationParams, band: int = -1, n_points: int = 3000, seed: int = 2
) -> tuple[float, float]:
    """Fit ``(1 − ν)·exp(−d/L)`` to the binned correlogram of the prior's residual (true sites).

    Returns ``(L px, ν)``: the correlation that localisation's Gaussian-process misfit assumes.
    """
    from scipy.optimize import curve_fit

    rc, rss = region_points(region, n_points, seed)
    geom = site_geometry(region.buildings, region.tx_rc, rc, receiver_fraction=params.roof_fraction)
    with torch.no_grad():
        res = rss[band] - power_sum_db(site_power_db(geom, params, float(region.freqs_mhz[band]))).numpy()
    res = res - res.mean()
    d = np.linalg.norm(rc[:, None].astype(float) - rc[None].astype(float), axis=-1)
    semi = 0.5 * (res[:, None] - res[None]) ** 2
    edges = np.array([0.5, 2, 5, 10, 20, 40, 80, 160])
    mids, corr = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (d > lo) & (d <= hi)
        if m.sum() > 50:
            mids.append(float(d[m].mean()))
            corr.append(1 - float(semi[m].mean()) / float(res.var()))
    (L, nu), _ = curve_fit(
        lambda x, L, nu: (1 - nu) * np.exp(-x / L),
        np.array(mids),
        np.array(corr),
        p0=(20.0, 0.2),
        bounds=([1.0, 0.0], [200.0, 0.9]),
    )
    return float(L), float(nu)


# Starting points of the shadow-recovery length D (px): Adam moves D by ~lr per step, so the fit
# runs from each and keeps the lowest loss on the fit region.
RECOVERY_STARTS_PX = (30.0, 120.0, 400.0)


def fit_prior_curves(
    region, params: PropagationParams, n_points: int = 20000, seed: int = 5, dominant: float = 0.8
) -> PropagationParams:
    """``params`` with the correction curves fitted on ``region`` (true sites, every band).

    A point joins the fit when one site gives at least ``dominant`` of its power: that site's
    geometry then explains the point's residual (truth − the scalar prior, minus each band's
    mean, which the per-map offset absorbs anyway).
    """
    scalars = replace(params, curves=None)
    rc, rss = region_points(region, n_points, seed)
    geom = site_geometry(region.buildings, region.tx_rc, rc, receiver_fraction=params.roof_fraction)
    feats_all = curve_features(geom, scalars)
    feats, residual = [], []
    with torch.no_grad():
        for j, f in enumerate(region.freqs_mhz.tolist()):
            site_db = site_power_db(geom, scalars, f)
            total = power_sum_db(site_db)
            share = torch.pow(10.0, (site_db - total) / 10)
            keep = (share.max(0).values >= dominant).numpy()
            k = share.argmax(0)
            cols = torch.arange(site_db.shape[1])
            r = rss[j] - total.numpy()
            residual.append(r[keep] - r[keep].mean())
            feats.append({n: v[k, cols].numpy()[keep] for n, v in feats_all.items()})
    merged = {n: np.concatenate([f[n] for f in feats]) for n in feats[0]}
    return replace(params, curves=fit_curves(merged, np.concatenate(residual)), version=PRIOR_VERSION)


def calibrate(
    region, n_points: int = 12000, steps: int = 600, log=print, curves: bool = True
) -> PropagationParams:
    """The whole calibration on one region: the fit (from each shadow-recovery start, the best
    by the fit region's own loss), the correction curves (unless ``curves=False``), then the
    residual correlation."""
    runs = []
    for d0 in RECOVERY_STARTS_PX:
        log(f"fit from shadow recovery D = {d0:g} px")
        runs.append(
            fit(
                region,
                replace(PropagationParams(), shadow_recovery_px=d0),
                n_points,
                steps,
                log=log,
                with_loss=True,
            )
        )
    params = min(runs, key=lambda r: r[1])[0]
    if curves:
        log("fitting the correction curves")
        params = fit_prior_curves(region, params)
    else:
        params = replace(params, version=2)
    corr_px, nugget = residual_correlation(region, params)
    log(f"residual correlation: L = {corr_px:.1f} px, nugget = {nugget:.2f}")
    return replace(params, residual_corr_px=corr_px, residual_nugget=nugget)


def write_into_checkpoint(directory: str | Path, record: dict) -> Path:
    """Put the physics-calibration block into a checkpoint's ``config.json`` and make the
    transmitter-aware path its default (``pipeline.mode = "physics"``)."""
    from ..models.checkpoint import CONFIG_FILE, read_config
    from ..pipeline.physics_map import PhysicsSettings

    config = read_config(directory)
    # A re-calibration replaces the physics, not the choices made on top of it (the heat map,
    # the evidence temperature …): keep the checkpoint's settings when it has them.
    settings = (config.get("physics") or {}).get("settings") or PhysicsSettings().to_dict()
    config["physics"] = {
        "version": record["params"]["version"],
        "params": record["params"],
        "settings": settings,
        "default_freq_mhz": 5750.0,
        "calibrated_on": record["fitted_on"],
        "check_scores": record["check_scores"],
        "date": record["date"],
    }
    config.setdefault("pipeline", {})["mode"] = "physics"
    path = Path(directory) / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--region", type=int, default=1, help="BRAT region to fit on (default 1)")
    ap.add_argument("--check", type=int, default=2, help="BRAT region to check on (default 2)")
    ap.add_argument("--points", type=int, default=12000, help="open pixels used by the fit")
    ap.add_argument("--steps", type=int, default=600, help="Adam steps")
    ap.add_argument("--data-dir", default=None, help="folder holding brat/ (default ../shared/data)")
    ap.add_argument("--out", default=str(CALIBRATION_PATH), help="where to write the JSON")
    ap.add_argument("--plot", default=None, metavar="PNG", help="draw the fitted correction curves here")
    ap.add_argument(
        "--no-curves", action="store_true", help="scalars only (a version-2 prior, no correction curves)"
    )
    ap.add_argument(
        "--into",
        default=None,
        metavar="CHECKPOINT_DIR",
        help="also write the block into this checkpoint's config.json (and make physics its mode)",
    )
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    t0 = time.time()
    fit_region = load_brat_region(args.region, args.data_dir)
    print(f"fitting the prior on BRAT region {args.region} ({args.points} px × 5 bands)")
    params = calibrate(fit_region, args.points, args.steps, curves=not args.no_curves)
    record = {
        "params": params.to_dict(),
        "prior_version": params.version,
        "fitted_on": f"BRAT region {args.region}, true sites, all 5 bands",
        "fit_scores": score(fit_region, params),
        "check_region": args.check,
        "check_scores": score(load_brat_region(args.check, args.data_dir), params),
        "command": "python -m wifidiff_fast.physics.calibrate " + " ".join(argv or []),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    for name, sc in (("fit", record["fit_scores"]), ("check", record["check_scores"])):
        print(
            f"{name} region: "
            + "  ".join(
                f"{f} MHz raw {v['raw_rmse_db']:.2f} / offset {v['offset_rmse_db']:.2f} dB"
                for f, v in sc.items()
            )
        )
    print(f"wrote {args.out}")
    if args.plot and params.curves is not None:
        plot_curves({f"region {args.region}": params.curves}, args.plot)
        print(f"drew the correction curves in {args.plot}")
    if args.into:
        print(f"wrote the physics block into {write_into_checkpoint(args.into, record)}")


if __name__ == "__main__":
    main()
