"""Evaluation: metrics (DESIGN §5), classical baselines, named data sets and the runner/CLI.

``python -m wifidiff_fast.eval --help`` runs the sparse-sample benchmark. Importing this package
loads no estimator and no model; the estimator is imported only when a ``wifidiff*`` method is
asked for.
"""

from .baselines import BASELINES, idw, kriging, rbf
from .metrics import METRICS, all_metrics, mse, nmse, psnr, rmse, rmse_db, ssim

__all__ = [
    "mse",
    "rmse",
    "nmse",
    "psnr",
    "ssim",
    "rmse_db",
    "all_metrics",
    "METRICS",
    "idw",
    "rbf",
    "kriging",
    "BASELINES",
]
