"""``python -m wifidiff_fast.estimate``: estimate one radio map from your own files.

    python -m wifidiff_fast.estimate --buildings layout.png --samples samples.csv --out map.npy --png map.png

Buildings: ``.npy`` (0/1 array) or an image (non-zero/bright = building). Samples: CSV with
columns ``row,col,rss_dbm`` (header optional). Writes the RSS map in dBm (``.npy``, NaN on
buildings), optionally the uncertainty map and a picture. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _picture(path: Path, buildings: np.ndarray, samples: np.ndarray, rss: np.ndarray, unc: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    im = axes[0].imshow(np.ma.masked_invalid(rss), cmap="viridis")
    axes[0].imshow(np.ma.masked_equal(buildings, 0), cmap="gray", vmin=0, vmax=2)
    axes[0].scatter(samples[:, 1], samples[:, 0], s=8, c="w", edgecolors="k", linewidths=0.3)
    axes[0].set_title("estimated RSS (samples in white)")
    fig.colorbar(im, ax=axes[0], fraction=0.046, label="dBm")
    im = axes[1].imshow(np.ma.masked_invalid(unc), cmap="magma")
    axes[1].set_title("uncertainty, 1σ")
    fig.colorbar(im, ax=axes[1], fraction=0.046, label="dB")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wifidiff_fast.estimate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--buildings", required=True, help=".npy or image file, 1/bright = building")
    p.add_argument("--samples", required=True, help="CSV with row,col,rss_dbm")
    p.add_argument("--out", required=True, help="output .npy: RSS in dBm, NaN on buildings")
    p.add_argument("--uncertainty", default=None, help="also write the uncertainty map (.npy, dB)")
    p.add_argument("--png", default=None, help="also write a picture")
    p.add_argument("--checkpoint", default="small")
    p.add_argument("--mode", choices=("physics", "diffusion"), default=None,
                   help="physics (the shipped default): localise the transmitters, calibrated propagation "
                        "prior + kriging; diffusion: WiFi-Diffusion boost/generation/election")
    p.add_argument("--freq-mhz", type=float, default=None, help="carrier (physics; default: the checkpoint's, 5750)")
    p.add_argument("--transmitters", default=None, metavar="R,C[;R,C...]",
                   help="known transmitter pixels (physics; may lie outside the grid): skips localisation")
    p.add_argument("--candidates", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--reuse", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    from . import RadioMapEstimator
    from .data.loaders import load_buildings_file, load_samples_csv

    try:
        buildings = load_buildings_file(args.buildings)
        samples = load_samples_csv(args.samples)
        est = RadioMapEstimator.from_pretrained(args.checkpoint, device=args.device)
        tx = None
        if args.transmitters:
            try:
                tx = [[float(v) for v in pair.split(",")] for pair in args.transmitters.split(";")]
            except ValueError:
                raise ValueError(f"--transmitters must look like 'R,C;R,C', got {args.transmitters!r}") from None
        res = est.estimate(buildings, samples, candidates=args.candidates, steps=args.steps, reuse=args.reuse,
                           seed=args.seed, mode=args.mode, freq_mhz=args.freq_mhz, transmitters=tx)
        np.save(args.out, res.rss_dbm)
        if args.uncertainty:
            np.save(args.uncertainty, res.uncertainty_db)
        if args.png:
            _picture(Path(args.png), buildings, samples, res.rss_dbm, res.uncertainty_db)
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t = res.timings_ms
    if res.mode == "physics":
        sites = "; ".join(f"({r:.0f}, {c:.0f})" for r, c in res.transmitters[: res.n_sites, :2])
        how = f"{res.n_sites} transmitter(s) at (row, col) {sites}"
    else:
        how = ("the boost map (no diffusion)" if res.elected < 0 else
               f"elected candidate {res.elected} of {len(res.scores)}")
    print(f"wrote {args.out}: {buildings.shape[0]}x{buildings.shape[1]}, {len(samples)} samples, "
          f"{res.mode} mode, {how}, {t['total']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
