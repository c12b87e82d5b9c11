"""``python -m wifidiff_fast.raytrace``: generate a Sionna RT corpus (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..runtime.progress import add_quiet_flag, for_cli
from .config import SOURCES, RTConfig
from .corpus import generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.raytrace",
        description="Generate a Sionna RT radio-map corpus (resumable).",
    )
    ap.add_argument("--out", required=True, help="output folder (e.g. corpus/raytrace)")
    ap.add_argument("--n", type=int, default=200, help="number of maps (indices 0..n-1)")
    ap.add_argument("--size", type=int, default=256, help="map side in pixels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", choices=SOURCES, default="procedural")
    ap.add_argument("--rays", type=float, default=1e7, help="rays per map (all sectors together)")
    ap.add_argument("--depth", type=int, default=3, help="max interaction depth")
    ap.add_argument("--pixel-m", type=float, default=2.0)
    ap.add_argument("--margin", type=int, default=32, help="context around the map [px]")
    ap.add_argument(
        "--sectors",
        type=int,
        choices=(1, 3),
        default=3,
        help="3: BRAT-like tr38901 sectors; 1: one isotropic antenna per site",
    )
    ap.add_argument("--no-diffraction", action="store_true")
    ap.add_argument("--batch", type=int, default=8, help="maps between manifest updates")
    ap.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes, one Dr.Jit thread each (default: min(2, cores))",
    )
    ap.add_argument("--data-dir", default=None, help="folder holding brat/ (default: WIFIDIFF_DATA_DIR)")
    add_quiet_flag(ap)
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("--n must be >= 0")
    cfg = RTConfig(
        size=args.size,
        pixel_m=args.pixel_m,
        margin=args.margin,
        source=args.source,
        rays=int(args.rays),
        max_depth=args.depth,
        diffraction=not args.no_diffraction,
        sectors=args.sectors,
    )
    try:
        summary = generate(
            args.out,
            args.n,
            cfg,
            seed=args.seed,
            batch=args.batch,
            workers=args.workers,
            progress=for_cli(args.quiet),
            data_dir=args.data_dir,
        )
    except (ImportError, ValueError, FileNotFoundError) as exc:
        print(f"raytrace: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
