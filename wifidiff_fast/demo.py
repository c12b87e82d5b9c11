"""``python -m wifidiff_fast.demo``: the README's main job.

Estimates every bundled example map (``wifidiff_fast/data/examples``) from N sparse samples with
the shipped checkpoint, prints its metrics beside the three interpolation baselines and the
per-stage timings, and writes one PNG per map (buildings + samples, ground truth, estimate,
uncertainty, best baseline, on one dB colour scale).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np


def _figure(path: Path, scene, samples, est, best_name, best_map, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = scene.rss_dbm
    lo, hi = np.nanpercentile(truth, 1), np.nanmax(truth)
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.3))
    panels = [
        ("buildings + samples", None),
        ("ground truth", truth),
        (f"wifidiff_fast ({metrics['wifidiff']:.2f} dB RMSE)", est.rss_dbm),
        (
            "uncertainty, 1σ" if est.mode == "physics" else "uncertainty (candidate spread)",
            est.uncertainty_db,
        ),
        (f"best baseline: {best_name} ({metrics[best_name]:.2f} dB)", best_map),
    ]
    for ax, (title, img) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if img is None:
            ax.imshow(scene.buildings, cmap="gray_r", vmin=0, vmax=1.6)
            ax.scatter(
                samples[:, 1],
                samples[:, 0],
                c=samples[:, 2],
                cmap="viridis",
                vmin=lo,
                vmax=hi,
                s=14,
                edgecolors="k",
                linewidths=0.4,
            )
            continue
        if title.startswith("uncertainty"):
            im = ax.imshow(img, cmap="magma")
            fig.colorbar(im, ax=ax, fraction=0.046, label="dB")
            continue
        im = ax.imshow(np.ma.masked_invalid(img), cmap="viridis", vmin=lo, vmax=hi)
        ax.imshow(np.ma.masked_equal(scene.buildings, 0), cmap="gray", vmin=0, vmax=2)
        fig.colorbar(im, ax=ax, fraction=0.046, label="RSS (dBm)")
        if img is est.rss_dbm and est.transmitters is not None and est.n_sites:
            # the localised sites (inside the frame; a site outside the window is not drawn)
            H, W = truth.shape
            t = est.transmitters[: est.n_sites]
            t = t[(t[:, 0] >= 0) & (t[:, 0] < H) & (t[:, 1] >= 0) & (t[:, 1] < W)]
            ax.scatter(t[:, 1], t[:, 0], marker="x", c="red", s=60, label="localised site")
        if img is truth and len(scene.tx_rc):
            H, W = truth.shape
            t = scene.tx_rc[
                (scene.tx_rc[:, 0] >= 0)
                & (scene.tx_rc[:, 0] < H)
                & (scene.tx_rc[:, 1] >= 0)
                & (scene.tx_rc[:, 1] < W)
            ]
            ax.scatter(t[:, 1], t[:, 0], marker="+", c="white", s=60, label="true site")
    fig.suptitle(f"{scene.name}: N = {len(samples)} samples", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    from .runtime.progress import add_quiet_flag, for_cli

    p = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="out/demo", help="folder for the PNGs and results.json")
    p.add_argument("--n", type=_count(1), default=50, help="samples per map (default 50)")
    p.add_argument("--checkpoint", default="small")
    p.add_argument(
        "--mode",
        choices=("physics", "diffusion"),
        default=None,
        help="default: the checkpoint's (physics: localise + propagation prior + kriging)",
    )
    p.add_argument(
        "--candidates",
        type=_count(0),
        default=None,
        help="default: the checkpoint's (64); 0 = the boost map alone",
    )
    p.add_argument("--steps", type=_count(1), default=None, help="default: the checkpoint's (10)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=_count(0), default=0)
    add_quiet_flag(p)
    args = p.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from . import RadioMapEstimator
    from .data.loaders import example_scenes

    console = Console(width=140)
    # the spinner goes to stderr (the tables are the output) and follows the package-wide rule
    show = for_cli(args.quiet)
    status = Console(stderr=True).status if show else _no_status
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        est = RadioMapEstimator.from_pretrained(args.checkpoint, device=args.device, progress=show)
        scenes = example_scenes()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record = est.config.get("training", {})
    console.print(
        f"checkpoint [bold]{args.checkpoint}[/]: mode {args.mode or est.mode}; networks: "
        f"{record.get('steps', '?')} training steps on {record.get('hardware', '?')}; device {args.device}"
    )
    summary = Table(title=f"RMSE (dB) / NMSE on the bundled examples, N = {args.n}")
    for col in ("map", "wifidiff_fast", "idw", "rbf", "kriging", "wifidiff ms", "kriging ms"):
        summary.add_column(col, justify="right" if col != "map" else "left")
    stages = Table(title="wifidiff_fast per-stage timings (ms)")
    mode = args.mode or est.mode
    stage_names = (
        ("boost", "localise", "prior", "kriging", "total")
        if mode == "physics"
        else ("boost", "critical_points", "generation", "election", "total")
    )
    stages.add_column("map")
    for name in stage_names:
        stages.add_column(name, justify="right")
    try:
        results = _run_all(args, status, est, scenes, out, summary, stages, stage_names)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    console.print(summary)
    console.print(stages)
    import json

    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {len(results)} PNGs and results.json to {out}/")
    return 0


def _no_status(text: str):
    return contextlib.nullcontext()


def _run_all(args, status, est, scenes, out, summary, stages, stage_names) -> list[dict]:
    from .data.protocol import draw_samples, map_seed
    from .eval import BASELINES, nmse, rmse_db

    results = []
    for i, scene in enumerate(scenes):
        samples = draw_samples(scene.rss_dbm, scene.buildings, args.n, map_seed(args.seed, i, args.n))
        with status(f"estimating {scene.name} ({i + 1}/{len(scenes)})"):
            res = est.estimate(
                scene.buildings,
                samples,
                candidates=args.candidates,
                steps=args.steps,
                seed=args.seed,
                mode=args.mode,
                freq_mhz=scene.freq_mhz,
            )
        maps, ms = {"wifidiff": res.rss_dbm}, {"wifidiff": res.timings_ms["total"]}
        for name, fn in BASELINES.items():
            t0 = time.perf_counter()
            maps[name] = fn(scene.buildings, samples)
            ms[name] = (time.perf_counter() - t0) * 1e3
        err = {k: rmse_db(v, scene.rss_dbm) for k, v in maps.items()}
        nm = {k: nmse(v, scene.rss_dbm) for k, v in maps.items()}
        best = min(BASELINES, key=lambda k: err[k])
        _figure(out / f"{scene.name}.png", scene, samples, res, best, maps[best], err)
        summary.add_row(
            scene.name,
            *(f"{err[k]:.2f} / {nm[k]:.4f}" for k in ("wifidiff", "idw", "rbf", "kriging")),
            f"{ms['wifidiff']:.0f}",
            f"{ms['kriging']:.0f}",
        )
        stages.add_row(scene.name, *(f"{res.timings_ms.get(s, 0.0):.0f}" for s in stage_names))
        results.append(
            {
                "map": scene.name,
                "n": args.n,
                "rmse_db": err,
                "nmse": nm,
                "ms": ms,
                "timings_ms": res.timings_ms,
                "elected": res.elected,
                "png": f"{scene.name}.png",
            }
        )
    return results


if __name__ == "__main__":
    sys.exit(main())
