"""``wifidiff-fast simulate``: simulated scenes as the files ``estimate`` reads.

Per scene NAME: ``NAME_buildings.png`` (white = building), ``NAME_samples.csv`` (``row,col,rss_dbm``,
N samples drawn uniformly over open pixels), ``NAME_truth.npy`` (the full map, dBm, NaN on
buildings), and ``NAME_sites.csv`` (the transmitters' row,col). A way to try the CLI, and to score
it, without any data of your own.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from .errors import UsageError


def add_parser(sub, formatter) -> None:
    p = sub.add_parser(
        "simulate",
        help="write simulated scenes (buildings PNG, samples CSV, truth NPY)",
        description=__doc__,
        formatter_class=formatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the files (created if missing)")
    p.add_argument("--n", type=int, default=1, help="number of scenes")
    p.add_argument("--size", type=int, default=256, help="grid side in pixels")
    p.add_argument("--samples", type=int, default=25, help="samples drawn per scene")
    p.add_argument("--seed", type=int, default=0, help="random seed (scenes and samples)")


def run(args) -> dict:
    from PIL import Image

    from ..io import atomic_path, write_npy

    if args.n < 1 or args.samples < 1:
        raise UsageError("--n and --samples must be >= 1")
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    simulator = importlib.import_module("wifidiff_fast.data.simulator")
    protocol = importlib.import_module("wifidiff_fast.data.protocol")
    written = []
    for i, scene in enumerate(simulator.simulate_scenes(args.n, args.size, seed=args.seed)):
        samples = protocol.draw_samples(
            scene.rss_dbm, scene.buildings, args.samples, protocol.map_seed(args.seed, i, args.samples)
        )
        stem = out / scene.name
        with atomic_path(f"{stem}_buildings.png") as tmp:
            Image.fromarray((scene.buildings * 255).astype(np.uint8)).save(tmp, format="PNG")
        with atomic_path(f"{stem}_samples.csv") as tmp:
            lines = ["row,col,rss_dbm"] + [f"{int(r)},{int(c)},{v:.3f}" for r, c, v in samples]
            tmp.write_text("\n".join(lines) + "\n")
        with atomic_path(f"{stem}_sites.csv") as tmp:
            tmp.write_text("row,col\n" + "".join(f"{int(r)},{int(c)}\n" for r, c in scene.tx_rc))
        write_npy(f"{stem}_truth.npy", scene.rss_dbm)
        written.append({"name": scene.name, "freq_mhz": scene.freq_mhz, "prefix": str(stem)})
    return {"ok": True, "scenes": written}
