"""``python -m wifidiff_fast.train``: train (resumably) and export a checkpoint.

Examples::

    python -m wifidiff_fast.train --preset small --run runs/small --device cuda --minutes 6 --stage joint
    python -m wifidiff_fast.train --run runs/small --device cuda --stage correction
    python -m wifidiff_fast.train --run runs/small --export wifidiff_fast/checkpoints/small --plot
    python -m wifidiff_fast.train --run runs/ft --stage boost --init-from wifidiff_fast/checkpoints/small \
        --mix brat:1 --lr 1e-4 --minutes 90 --val-every 100

Re-running the same command resumes from ``<run>/state.pt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..runtime import progress
from .loop import TrainConfig, Trainer


def _progress_bar(quiet: bool):
    """The per-step bar, or None (no bar) when quiet, not on a terminal or ``WIFIDIFF_PROGRESS=0``:
    a bar redrawn into a log file (nohup, a scheduler) fills it with carriage-return noise."""
    if not progress.for_cli(quiet):
        return None
    from tqdm import tqdm

    bar = tqdm(desc="training", unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=2.0)

    def update(step: int, losses: dict) -> None:
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})

    return update


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="small", choices=["tiny", "small", "paper"])
    p.add_argument("--run", default="runs/small", help="run directory (state.pt, log.csv)")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--stage",
        choices=["joint", "boost", "correction", "none"],
        default="joint",
        help="joint: AttUnet + denoiser; boost: the AttUnet alone; correction: the α ResNet",
    )
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of this sitting")
    p.add_argument("--max-steps", type=int, default=10**9)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--mix", default="brat:0.5,sim:0.5", help="source:weight,... of brat, sim, raytrace")
    p.add_argument(
        "--crop",
        type=int,
        default=None,
        help="train on random CROP² windows of the 256² maps, N at the full maps' sample density "
        "(e.g. 128: a quarter of the network's work per map; validation stays at 256²)",
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--raytrace-dir", default="corpus/raytrace")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--val-every", type=int, default=200)
    p.add_argument("--corr-maps", type=int, default=256)
    p.add_argument("--corr-candidates", type=int, default=16)
    p.add_argument("--corr-epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-from", default=None, help="start a new run from a checkpoint directory's weights")
    p.add_argument("--reinit", default="", help="comma list of networks to start fresh despite --init-from")
    p.add_argument("--export", default=None, help="write a checkpoint directory from the EMA networks")
    p.add_argument("--name", default=None, help="checkpoint name recorded in its config")
    p.add_argument(
        "--select",
        choices=["last", "best"],
        default="last",
        help="export the last EMA networks or those of the best validation (best.pt)",
    )
    p.add_argument("--plot", action="store_true", help="write <run>/loss.png from log.csv")
    progress.add_quiet_flag(p)
    args = p.parse_args(argv)
    cfg = TrainConfig(
        preset=args.preset,
        run_dir=args.run,
        device=args.device,
        batch=args.batch,
        lr=args.lr,
        minutes=args.minutes,
        max_steps=args.max_steps,
        save_every=args.save_every,
        val_every=args.val_every,
        seed=args.seed,
        mix=args.mix,
        crop=args.crop,
        data_dir=args.data_dir,
        raytrace_dir=args.raytrace_dir,
        corr_maps=args.corr_maps,
        corr_candidates=args.corr_candidates,
        corr_epochs=args.corr_epochs,
        init_from=args.init_from,
        reinit=tuple(x for x in args.reinit.split(",") if x),
        train_denoiser=args.stage != "boost",
    )
    try:
        trainer = Trainer(cfg, progress=_progress_bar(args.quiet))
        if args.stage in ("joint", "boost"):
            trainer.train_joint()
        elif args.stage == "correction":
            trainer.train_correction()
        if args.export:
            path = trainer.export(args.export, args.name or Path(args.export).name, select=args.select)
            print(f"exported checkpoint to {path}")
        if args.plot:
            from .plot import plot_losses

            print(f"wrote {plot_losses(Path(args.run))}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
