"""Units: dBm <-> model space <-> metric space, in one place.

* **dBm** is what users give and get. Building pixels carry no RSS (NaN in outputs).
* **Model space** ``x ∈ [-1, 1]``: ``x = 2·(clip(p, P_MIN, P_MAX) − P_MIN)/(P_MAX − P_MIN) − 1``
  (DESIGN §1). Networks see and produce this.
* **Metric space** ``y = (x + 1)/2 ∈ [0, 1]``: the paper's convention for MSE/NMSE/PSNR/SSIM.

The range is a checkpoint property (stored in its config); these are the package defaults, wide
enough for every data set we use: BRAT maps lie in −93…−20 dBm and RadioMapSeer gains, read as RSS
at its 23 dBm transmit power, in −124…−25 dBm.
"""

from __future__ import annotations

import numpy as np
import torch

P_MIN_DBM = -130.0
P_MAX_DBM = -10.0


def dbm_to_model(p, p_min: float = P_MIN_DBM, p_max: float = P_MAX_DBM):
    """dBm → model space ``[-1, 1]`` (clipped). Works on numpy arrays and torch tensors."""
    if isinstance(p, torch.Tensor):
        return 2.0 * (p.clamp(p_min, p_max) - p_min) / (p_max - p_min) - 1.0
    p = np.asarray(p, dtype=np.float64)
    return 2.0 * (np.clip(p, p_min, p_max) - p_min) / (p_max - p_min) - 1.0


def model_to_dbm(x, p_min: float = P_MIN_DBM, p_max: float = P_MAX_DBM):
    """Model space → dBm (no clipping: the caller decides)."""
    return (x + 1.0) * 0.5 * (p_max - p_min) + p_min


def dbm_to_unit(p, p_min: float = P_MIN_DBM, p_max: float = P_MAX_DBM):
    """dBm → the ``[0, 1]`` metric scale of DESIGN §5."""
    return (dbm_to_model(p, p_min, p_max) + 1.0) * 0.5


def db_per_unit(p_min: float = P_MIN_DBM, p_max: float = P_MAX_DBM) -> float:
    """How many dB one unit of the [0, 1] scale spans (to turn a [0,1] RMSE into dB)."""
    return p_max - p_min
