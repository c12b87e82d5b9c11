"""Loss curves of a run as a PNG (from ``log.csv``)."""

from __future__ import annotations

import csv
from pathlib import Path


def plot_losses(run: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(run / "log.csv")))

    def series(key):
        pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(
        axes,
        ("loss_boost", "loss_den", "val_rmse_db_boost"),
        ("AttUnet masked MSE (model space)", "denoiser MSE (x0 or ε)", "val RMSE dB (BRAT region 2, N=50)"),
    ):
        x, y = series(key)
        ax.plot(x, y, lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        if key.startswith("loss"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = run / "loss.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
