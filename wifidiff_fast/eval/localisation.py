"""Localisation error against N: the building-aware, calibrated search vs a building-blind one.

    python -m wifidiff_fast.eval.localisation --out docs/results/localisation

On the site-holding 256² windows of both BRAT regions at 5750 MHz, each region's windows are
localised with the prior calibrated on the *other* region. Two searches, same samples:

* ``aware``: :func:`~wifidiff_fast.pipeline.localise.localise` with its defaults (calibrated
  prior with ray-cast building losses and sector pattern, offset prior, GP misfit);
* ``blind``: the same search with a building-blind prior (no building losses, free power, an
  independent least-squares misfit): the naive search of issue 9's table.

With ``--learned CKPT`` (a heat map from :mod:`wifidiff_fast.train.heatmap`; its ``record.json``
says which BRAT regions it trained on) two more run on the windows of the regions it never saw,
and ``aware``/``blind`` are also reported on those windows alone:

* ``learned``: the heat map's peaks (those at ≥ half the top probability, at most 3);
* ``learned+aware``: the analysis-by-synthesis search with the heat map's peaks as extra starts.

The error of a window is, for each true site inside it, the distance to the nearest site of the
best explaining set. Medians and 90th percentiles over all (window, site) pairs.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from ..data.loaders import load_brat_region
from ..data.protocol import draw_samples, map_seed
from ..physics.calibrate import calibrate
from ..physics.prior import load_calibration
from ..pipeline.localise import LocaliseParams, localise
from .windows import site_windows

__all__ = ["main"]


def _blind(params):
    return replace(params, wall_db=0.0, pen_db_per_px=0.0)


def _learned_sites(net, sc, s, k: int = 3) -> np.ndarray:
    """The heat map's own answer: its peaks at ≥ half the top peak's probability, at most ``k``."""
    from ..models.heatmap import predict_sites

    peaks = predict_sites(net, sc.buildings, s, sc.freq_mhz, k)
    return peaks[peaks[:, 2] >= 0.5 * peaks[0, 2], :2]


def _learned_starts(net, sc, s, k: int = 3) -> np.ndarray:
    """The localiser's extra starts: all ``k`` peaks, exactly as the estimator passes them."""
    from ..models.heatmap import predict_sites

    return predict_sites(net, sc.buildings, s, sc.freq_mhz, k)[:, :2]


def _trained_regions(ckpt) -> set[int]:
    """The BRAT regions a heat-map checkpoint trained on (its ``record.json``; unknown → both)."""
    rec = Path(ckpt) / "record.json"
    return set(json.loads(rec.read_text()).get("brat_regions", [1, 2])) if rec.exists() else {1, 2}


def run(windows: int, ns, seed: int, data_dir=None, log=print, learned=None, calibrations=None) -> dict:
    """Errors per search and N. With ``learned`` (a heat-map checkpoint) the learned searches join
    on the regions it never trained on, and every search is also reported on those alone."""
    cal = (
        {k: load_calibration(calibrations[k - 1]) for k in (1, 2)}
        if calibrations
        else {k: calibrate(load_brat_region(k, data_dir), log=lambda *_: None) for k in (1, 2)}
    )
    net, unseen = None, set()
    if learned is not None:
        from ..models.heatmap import load_heatmap

        net, unseen = load_heatmap(learned), {1, 2} - _trained_regions(learned)
        if not unseen:
            raise SystemExit(f"{learned} trained on both regions: no region is left to score it on")

    def abs_search(params, cfg, starts=None):
        return lambda sc, s: np.array(
            [
                h.rc()
                for h in localise(
                    sc.buildings,
                    s,
                    params,
                    sc.freq_mhz,
                    cfg,
                    seed,
                    extra_starts=starts(sc, s) if starts else None,
                ).sites
            ]
        )

    def searches(region: int, p):
        out = {
            "aware": abs_search(p, LocaliseParams()),
            "blind": abs_search(_blind(p), LocaliseParams(offset_sigma_db=None, gp_misfit=False)),
        }
        if region in unseen:
            out["learned"] = lambda sc, s: _learned_sites(net, sc, s)
            out["learned+aware"] = abs_search(p, LocaliseParams(), lambda sc, s: _learned_starts(net, sc, s))
        return out

    errs: dict[str, dict[int, list[float]]] = {}
    for region, other in ((1, 2), (2, 1)):
        for i, sc in enumerate(
            site_windows(region, n=windows, bands_mhz=(5750,), seed=seed, data_dir=data_dir)
        ):
            inside = [t for t in sc.tx_rc if 0 <= t[0] < sc.shape[0] and 0 <= t[1] < sc.shape[1]]
            for n in ns:
                s = draw_samples(sc.rss_dbm, sc.buildings, n, map_seed(seed, i, n))
                for name, search in searches(region, cal[other]).items():
                    found = search(sc, s)
                    e = [float(np.min(np.linalg.norm(found - t, axis=1))) for t in inside]
                    keys = [name] + (
                        [f"{name} (unseen regions)"]
                        if region in unseen and name in ("aware", "blind")
                        else []
                    )
                    for key in keys:
                        errs.setdefault(key, {m: [] for m in ns})[n] += e
                    log(f"{sc.name} N={n} {name}: {', '.join(f'{x:.1f}' for x in e)} px")
    return {
        name: {
            str(n): {"median_px": float(np.median(v)), "p90_px": float(np.percentile(v, 90)), "pairs": len(v)}
            for n, v in by_n.items()
        }
        for name, by_n in errs.items()
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output stem (.json and .md)")
    ap.add_argument("--windows", type=int, default=8, help="windows per region (default 8)")
    ap.add_argument("--n", default="10,25,50")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument(
        "--learned",
        metavar="CKPT",
        default=None,
        help="a heat-map checkpoint: adds the learned searches on the regions it never trained on",
    )
    ap.add_argument(
        "--calibrations",
        metavar="R1.json,R2.json",
        default=None,
        help="stored calibrations of regions 1 and 2 instead of fitting both (the fit is deterministic)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ns = [int(x) for x in args.n.split(",")]
    result = run(
        args.windows,
        ns,
        args.seed,
        args.data_dir,
        learned=args.learned,
        calibrations=args.calibrations.split(",") if args.calibrations else None,
    )
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    report = {
        "result": result,
        "date": date,
        "machine": f"{platform.machine()} CPU",
        "windows_per_region": args.windows,
        "band_mhz": 5750,
        "learned": args.learned,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Localisation error, BRAT regions 1 and 2 (each with the other's calibration), 5750 MHz",
        "",
        f"{date}, {report['machine']}; {args.windows} site-holding windows per region."
        + (
            f" Learned heat map: `{args.learned}` (scored only on regions it never trained on)."
            if args.learned
            else ""
        ),
        "",
        "| search | " + " | ".join(f"N = {n}: median / p90 px" for n in ns) + " |",
        "|---|" + "---:|" * len(ns),
    ]
    for name, by_n in result.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{by_n[str(n)]['median_px']:.1f} / {by_n[str(n)]['p90_px']:.1f}" for n in ns)
            + " |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
