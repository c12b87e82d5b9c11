"""Shared helpers of the pipeline tests: a tiny checkpoint (random weights), layouts, samples.

Imported as ``from pipecases import ...`` (pytest puts this directory on ``sys.path``, as for
tests/ops/opcases.py). The checkpoint fixtures built from these live in ``conftest.py``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from wifidiff_fast.models.checkpoint import build_networks, save_checkpoint
from wifidiff_fast.models.presets import preset
from wifidiff_fast.pipeline.estimator import CHECKPOINTS_DIR, RadioMapEstimator

SHIPPED = CHECKPOINTS_DIR / "small"
NON_NETWORK = (
    "name",
    "preset",
    "normalisation",
    "scheduler",
    "sampler_defaults",
    "boost",
    "election",
    "pipeline",
    "physics",
)


def tiny_config(**pipeline) -> dict:
    """The shipped config's non-network sections, small sampler defaults, for the tiny preset."""
    shipped = json.loads((SHIPPED / "config.json").read_text())
    cfg = {k: copy.deepcopy(shipped[k]) for k in NON_NETWORK if k in shipped}
    cfg.update(name="tiny-test", preset="tiny")
    cfg["sampler_defaults"] = {"candidates": 3, "steps": 3, "eta": 0.0, "reuse": 0.0}
    # These tests exercise the diffusion path unless they ask for the physics default.
    cfg.setdefault("pipeline", {})["mode"] = "diffusion"
    cfg["pipeline"].update(pipeline)
    return cfg


def write_tiny_checkpoint(directory: Path, seed: int = 0, **pipeline) -> Path:
    torch.manual_seed(seed)
    nets = build_networks(preset("tiny"))
    with torch.no_grad():  # a correction head that depends on its input (α varies per map)
        torch.nn.init.normal_(nets.correction.out.weight, std=0.3)
    return save_checkpoint(directory, nets, tiny_config(**pipeline))


def estimator(path, backend: str = "reference", **kw) -> RadioMapEstimator:
    return RadioMapEstimator.from_pretrained(path, backend=backend, **kw)


def layout(H: int = 48, W: int = 48, seed: int = 0, fill: float = 0.15) -> np.ndarray:
    """Blocky uint8 building mask with a guaranteed open border row."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((max(1, H // 8), max(1, W // 8))) < fill
    b = np.kron(blocks, np.ones((8, 8), dtype=bool))
    out = np.zeros((H, W), dtype=np.uint8)
    out[: b.shape[0], : b.shape[1]] = b[:H, :W]
    out[0] = 0
    assert out.any(), "the layout should hold at least one building"
    return out


def samples_for(buildings: np.ndarray, n: int = 12, seed: int = 0) -> np.ndarray:
    """``n`` distinct open-pixel samples (row, col, dBm) on a smooth synthetic field."""
    rng = np.random.default_rng(seed)
    open_ = np.argwhere(buildings == 0)
    pick = open_[rng.choice(len(open_), n, replace=False)]
    r0, c0 = buildings.shape[0] * 0.3, buildings.shape[1] * 0.6
    d = np.hypot(pick[:, 0] - r0, pick[:, 1] - c0) + 1.0
    rss = -40.0 - 25.0 * np.log10(d) + rng.normal(0, 1.0, n)
    return np.column_stack([pick, rss]).astype(np.float64)
