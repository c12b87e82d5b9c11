"""``wifidiff-fast estimate``: a radio map from your own files.

    wifidiff-fast estimate --buildings city.tif --samples drive_test.csv \\
        --out map.npy --geotiff map.tif --figure map.png

Buildings: GeoTIFF (CRS + geotransform kept; non-zero = building), PNG/JPG/BMP (bright = building)
or NPY (0/1). Samples: CSV with a header ``row,col,rss_dbm`` (pixels) or ``x,y,rss_dbm`` (the
GeoTIFF's CRS coordinates). Outputs: NPY (float32 dBm, NaN on buildings), GeoTIFF (band 1 dBm,
band 2 1σ dB, nodata -9999 on buildings, the input's georeference), a PNG figure.
Grids larger than --tile are estimated as overlapping tiles blended without seams; --ray spreads
the tiles over a Ray cluster. Exit codes: 0 ok, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .errors import UsageError

NPY_SUFFIXES = (".npy",)
GEOTIFF_SUFFIXES = (".tif", ".tiff")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg")


def add_parser(sub, formatter) -> None:
    p = sub.add_parser(
        "estimate",
        help="estimate a radio map from a building raster and a samples CSV",
        description=__doc__,
        formatter_class=formatter,
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument(
        "--buildings",
        required=True,
        metavar="FILE",
        help="building raster: .tif GeoTIFF (non-zero = building), .png (bright = building) or .npy (0/1)",
    )
    io.add_argument(
        "--samples",
        required=True,
        metavar="CSV",
        help="samples CSV with a header row,col,rss_dbm (pixels) or x,y,rss_dbm (the GeoTIFF's CRS)",
    )
    io.add_argument(
        "--out",
        metavar="MAP.npy",
        default=None,
        help="write the map: float32 dBm, NaN on buildings (default: not written)",
    )
    io.add_argument(
        "--geotiff",
        metavar="MAP.tif",
        default=None,
        help="write a GeoTIFF: band 1 RSS dBm, band 2 uncertainty 1σ dB, nodata -9999 on buildings (default: not written)",
    )
    io.add_argument(
        "--figure",
        "--png",
        dest="figure",
        metavar="MAP.png",
        default=None,
        help="write a figure: samples, map with transmitter sites, uncertainty (dB colour bars) (default: not written)",
    )
    io.add_argument(
        "--uncertainty",
        metavar="UNC.npy",
        default=None,
        help="write the 1σ uncertainty map (dB) (default: not written)",
    )
    io.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        metavar="M",
        help="metres per pixel of a PNG/NPY raster: axes in metres and a georeferenced GeoTIFF "
        "(a GeoTIFF input brings its own; default: none, axes in pixels)",
    )
    io.add_argument(
        "--clip-rss",
        action="store_true",
        help="clip samples outside the checkpoint's RSS range (−130..−10 dBm) to it, with a warning "
        "(default: reject them, exit 2)",
    )
    m = p.add_argument_group("model")
    m.add_argument("--checkpoint", default="small", help="packaged checkpoint name or a checkpoint directory")
    m.add_argument(
        "--mode",
        choices=("physics", "diffusion"),
        default=None,
        help="physics: localise the transmitters, calibrated propagation prior + kriging; diffusion: "
        "WiFi-Diffusion boost → DDIM candidates → election (default: the checkpoint's, physics)",
    )
    m.add_argument(
        "--freq-mhz",
        type=float,
        default=None,
        help="carrier frequency in MHz (physics; default: the checkpoint's, 5750)",
    )
    m.add_argument(
        "--antenna",
        choices=("sector", "omni"),  # pipeline.physics_map.ANTENNAS, without importing torch for --help
        default=None,
        help="what the transmitters are (physics): sector masts as calibrated, or omni transmitters "
        "of unknown power such as WiFi access points (default: the checkpoint's, sector)",
    )
    m.add_argument(
        "--transmitters",
        default=None,
        metavar="R,C[;R,C...]",
        help="known transmitter pixels (row,col; may lie outside the grid): skips localisation "
        "(physics; default: localise them from the samples)",
    )
    m.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="diffusion candidates K, 0 = the boost map alone (diffusion; default: the checkpoint's, 64)",
    )
    m.add_argument(
        "--steps", type=int, default=None, help="DDIM steps (diffusion; default: the checkpoint's, 10)"
    )
    m.add_argument(
        "--reuse",
        type=float,
        default=None,
        help="midpoint reuse ratio R in [0, 1) (diffusion; default: the checkpoint's, 0 = off)",
    )
    m.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same map")
    m.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    m.add_argument("--backend", default="auto", help="op backend: auto, reference, cpp, cuda or triton")
    r = p.add_argument_group("large regions")
    r.add_argument(
        "--tile",
        type=int,
        default=256,
        help="grids larger than this many pixels per side run as overlapping tiles",
    )
    r.add_argument("--overlap", type=int, default=64, help="overlap between tiles in pixels (the blend band)")
    r.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run the tiles on a Ray cluster: ADDRESS of a running one (ray://host:10001 or auto), "
        "or no value for a local one (default: off, this process)",
    )
    r.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray actors, each holding one estimator (default: one per CPU of the cluster)",
    )


def _check_output(path: str | None, suffixes: tuple[str, ...], option: str) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    if p.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: use a {' or '.join(suffixes)} file name")
    if not p.parent.is_dir() and str(p.parent) != "":
        raise UsageError(f"{option} {path}: folder {p.parent} does not exist")
    if p.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name")
    return p


def _parse_sites(text: str | None):
    if not text:
        return None
    try:
        sites = [[float(v) for v in pair.split(",")] for pair in text.split(";") if pair.strip()]
        if not sites or any(len(s) != 2 for s in sites):
            raise ValueError
    except ValueError:
        raise UsageError(f"--transmitters must look like 'R,C;R,C', got {text!r}") from None
    return sites


def _explain(res, mode: str) -> str:
    if mode == "physics":
        n = res.n_sites
        return (
            f"{n} transmitter site(s) explain the samples"
            if n
            else "no transmitter site explains the samples: plain kriging / the learned map"
        )
    if res.elected < 0:
        return "the boost map alone (candidates=0: no diffusion, no election)"
    k = len(res.scores)
    boost_joined = k > 0 and res.elected == k - 1
    if boost_joined:
        return (
            f"the election chose the boost map (entry {res.elected} of {k}: the boost map joins "
            f"the {k - 1} diffusion candidates as the last entry)"
        )
    return f"the election chose diffusion candidate {res.elected} of {k} (lowest score {float(res.scores.min()):.3g})"


def run(args, quiet: bool) -> dict:
    from ..data.validate import check_samples, clip_rss
    from ..io import read_buildings, read_samples, write_figure, write_geotiff, write_npy

    outputs = {
        "out": _check_output(args.out, NPY_SUFFIXES, "--out"),
        "geotiff": _check_output(args.geotiff, GEOTIFF_SUFFIXES, "--geotiff"),
        "figure": _check_output(args.figure, FIGURE_SUFFIXES, "--figure"),
        "uncertainty": _check_output(args.uncertainty, NPY_SUFFIXES, "--uncertainty"),
    }
    if not any(outputs.values()):
        raise UsageError("nothing to write: give at least one of --out, --geotiff, --figure, --uncertainty")
    if args.workers is not None and args.ray is None:
        raise UsageError("--workers needs --ray")
    sites = _parse_sites(args.transmitters)
    raster = read_buildings(args.buildings, pixel_size_m=args.pixel_size)
    samples = read_samples(args.samples, raster.georef)
    warnings = []

    from ..pipeline.estimator import RadioMapEstimator

    # the command shows its own bar or spinner (off under --quiet); the estimator's own would fight it
    est = RadioMapEstimator.from_pretrained(
        args.checkpoint, device=args.device, backend=args.backend, progress=False
    )
    if args.clip_rss:
        samples, n_clipped = clip_rss(samples, (est.p_min, est.p_max))
        if n_clipped:
            warnings.append(
                f"clipped {n_clipped} sample(s) to the checkpoint's range {est.p_min:g}..{est.p_max:g} dBm"
            )
    try:
        clean = check_samples(samples, raster.mask, rss_range=(est.p_min, est.p_max))
    except ValueError as exc:
        raise ValueError(f"samples file {args.samples}: {exc}") from None
    if len(clean) < len(samples):
        warnings.append(f"{len(samples) - len(clean)} duplicate sample pixel(s) averaged")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)

    kwargs = dict(
        candidates=args.candidates,
        steps=args.steps,
        reuse=args.reuse,
        seed=args.seed,
        mode=args.mode,
        freq_mhz=args.freq_mhz,
    )
    if args.antenna is not None:
        kwargs["antenna"] = args.antenna
    mode = args.mode or est.mode
    H, W = raster.mask.shape
    tiled = max(H, W) > args.tile or args.ray is not None
    from .console import progress_bar, spinner

    t0 = time.perf_counter()
    if tiled:
        from ..tiling import estimate_region

        with progress_bar(not quiet) as update:
            res = estimate_region(
                est,
                raster.mask,
                clean,
                tile=args.tile,
                overlap=args.overlap,
                executor="ray" if args.ray else "local",
                address=None if args.ray in (None, "local") else args.ray,
                workers=args.workers,
                progress=update,
                transmitters=sites,
                **kwargs,
            )
        how = (
            f"{res.tiles} tiles, each localising its own sites ({res.n_sites} after merging)"
            if mode == "physics"
            else f"{res.tiles} tiles"
        )
    else:
        with spinner(not quiet, f"estimating a {H}×{W} map from {len(clean)} samples ({mode} mode)…"):
            res = est.estimate(raster.mask, clean, transmitters=sites, **kwargs)
        how = _explain(res, mode)
    seconds = time.perf_counter() - t0

    written = []
    if outputs["out"]:
        written.append(str(write_npy(outputs["out"], res.rss_dbm)))
    if outputs["uncertainty"]:
        written.append(str(write_npy(outputs["uncertainty"], res.uncertainty_db)))
    if outputs["geotiff"]:
        written.append(str(write_geotiff(outputs["geotiff"], res.rss_dbm, raster.georef, res.uncertainty_db)))
    if outputs["figure"]:
        written.append(
            str(
                write_figure(
                    outputs["figure"],
                    raster.mask,
                    clean,
                    res.rss_dbm,
                    res.uncertainty_db,
                    res.transmitters,
                    res.n_sites,
                    raster.georef,
                    title=f"{Path(args.buildings).name}: {mode} mode, {how}",
                )
            )
        )
    open_px = raster.mask == 0
    rss_open = res.rss_dbm[open_px]
    unc_open = res.uncertainty_db[open_px]
    sites_out = []
    if res.transmitters is not None:
        for r, c, offset, _rot, _score in np.asarray(res.transmitters)[: res.n_sites, :5]:
            site = {"row": float(r), "col": float(c), "power_offset_db": float(offset)}
            if raster.georef is not None:
                a, b_, c0, d, e, f = raster.georef.transform
                site["x"], site["y"] = c0 + a * (c + 0.5) + b_ * (r + 0.5), f + d * (c + 0.5) + e * (r + 0.5)
            sites_out.append(site)
    return {
        "ok": True,
        "grid": [H, W],
        "samples": int(len(samples)),
        "samples_used": int(len(clean)),
        "mode": mode,
        "explanation": how,
        "transmitters": sites_out,
        "rss_dbm": {
            "min": float(np.nanmin(rss_open)),
            "median": float(np.nanmedian(rss_open)),
            "max": float(np.nanmax(rss_open)),
        },
        "uncertainty_db_median": float(np.nanmedian(unc_open)) if np.isfinite(unc_open).any() else None,
        "georeferenced": raster.georef is not None,
        "crs": bool(raster.georef and raster.georef.crs),
        "tiles": getattr(res, "tiles", 1),
        "seconds": round(seconds, 3),
        "timings_ms": res.timings_ms,
        "written": written,
        "warnings": warnings,
    }


def show(summary: dict) -> None:
    from .console import console, table

    rows = [
        (
            "grid",
            f"{summary['grid'][0]} × {summary['grid'][1]} px"
            + (" (georeferenced)" if summary["georeferenced"] else ""),
        ),
        ("samples", f"{summary['samples']} read, {summary['samples_used']} used (duplicates averaged)"),
        ("mode", summary["mode"]),
        ("result", summary["explanation"]),
        ("RSS (dBm)", "min {min:.1f}  median {median:.1f}  max {max:.1f}".format(**summary["rss_dbm"])),
        (
            "uncertainty",
            "n/a"
            if summary["uncertainty_db_median"] is None
            else f"median 1σ {summary['uncertainty_db_median']:.2f} dB",
        ),
        (
            "time",
            f"{summary['seconds']:.1f} s"
            + (f" over {summary['tiles']} tiles" if summary["tiles"] > 1 else ""),
        ),
    ]
    for path in summary["written"]:
        rows.append(("wrote", path))
    out = console()
    out.print(table("wifidiff-fast estimate", rows))
    if summary["transmitters"]:
        has_xy = "x" in summary["transmitters"][0]
        headers = ("site", "row", "col") + (("x", "y") if has_xy else ()) + ("power offset (dB)",)
        trows = [
            (i, f"{s['row']:.0f}", f"{s['col']:.0f}")
            + ((f"{s['x']:.1f}", f"{s['y']:.1f}") if has_xy else ())
            + (f"{s['power_offset_db']:+.1f}",)
            for i, s in enumerate(summary["transmitters"])
        ]
        out.print(table("transmitter sites (may lie outside the grid)", trows, headers))
