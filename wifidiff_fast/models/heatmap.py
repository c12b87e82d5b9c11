"""A learned transmitter heat map: where the sites are, from buildings and sparse samples.

The second localiser of issue 9, beside analysis by synthesis (:mod:`wifidiff_fast.pipeline.localise`).
Sites often stand outside the window, so the network sees and predicts over the *extended* area:
the window plus ``MARGIN`` × its size on every side (the search area of the analysis-by-synthesis
localiser).

Inputs (``IN_CELLS²`` cells over the extended area, :func:`heatmap_inputs`):

====  ==========================================================================================
ch    meaning
====  ==========================================================================================
0     building fraction of the cell (0 outside the window: unknown there)
1     window mask (1 inside the window)
2     sample mask (1 where a cell holds a sample)
3     sample value against the loudest sample, ``(p − max p) / 20 dB`` (0 where no sample)
4     sample value against the samples' mean, ``(p − mean p) / 10 dB`` (0 where no sample)
5     carrier, ``(f − 3750 MHz) / 2000 MHz`` inside the window
====  ==========================================================================================

Output: ``OUT_CELLS²`` logits of "a site lies in this cell" (CenterNet-style Gaussian targets,
focal loss; :mod:`wifidiff_fast.train.heatmap`). :func:`decode_sites` turns them into ranked
(row, col, score) hypotheses in window pixels, with a sub-cell soft-argmax.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "MARGIN",
    "IN_CELLS",
    "OUT_CELLS",
    "SiteHeatmapNet",
    "heatmap_inputs",
    "site_targets",
    "decode_sites",
    "cell_size",
    "load_heatmap",
    "predict_sites",
]

MARGIN = 0.5
IN_CELLS = 128
OUT_CELLS = 64
IN_CHANNELS = 6


def cell_size(shape: tuple[int, int], cells: int) -> tuple[float, float]:
    """Pixels per cell (rows, cols) when the extended area of a ``shape`` window is ``cells²``."""
    H, W = shape
    return (1 + 2 * MARGIN) * H / cells, (1 + 2 * MARGIN) * W / cells


def _to_cells(rc: np.ndarray, shape, cells: int) -> np.ndarray:
    """Window pixel (row, col) → fractional cell coordinates of the extended area."""
    ch, cw = cell_size(shape, cells)
    H, W = shape
    return np.stack([(rc[:, 0] + MARGIN * H + 0.5) / ch, (rc[:, 1] + MARGIN * W + 0.5) / cw], -1)


def heatmap_inputs(buildings: np.ndarray, samples: np.ndarray, freq_mhz: float) -> torch.Tensor:
    """The network input ``float32 [IN_CHANNELS, IN_CELLS, IN_CELLS]`` for one window."""
    b = np.asarray(buildings, dtype=np.float32)
    H, W = b.shape
    mr, mc = int(round(MARGIN * H)), int(round(MARGIN * W))
    ext = np.zeros((H + 2 * mr, W + 2 * mc), np.float32)
    inside = np.zeros_like(ext)
    ext[mr : mr + H, mc : mc + W] = b
    inside[mr : mr + H, mc : mc + W] = 1.0
    pooled = F.adaptive_avg_pool2d(torch.from_numpy(np.stack([ext, inside]))[None], IN_CELLS)[0]
    x = torch.zeros((IN_CHANNELS, IN_CELLS, IN_CELLS))
    x[0], x[1] = pooled[0], pooled[1]
    s = np.asarray(samples, dtype=np.float64)
    cells = np.clip(np.floor(_to_cells(s[:, :2], (H, W), IN_CELLS)).astype(np.int64), 0, IN_CELLS - 1)
    flat = torch.as_tensor(cells[:, 0] * IN_CELLS + cells[:, 1])
    count = torch.zeros(IN_CELLS * IN_CELLS).index_add_(0, flat, torch.ones(len(s)))
    for ch, v in ((3, (s[:, 2] - s[:, 2].max()) / 20.0), (4, (s[:, 2] - s[:, 2].mean()) / 10.0)):
        tot = torch.zeros(IN_CELLS * IN_CELLS).index_add_(0, flat, torch.as_tensor(v, dtype=torch.float32))
        x[ch] = (tot / count.clamp_min(1)).reshape(IN_CELLS, IN_CELLS)
    x[2] = (count > 0).float().reshape(IN_CELLS, IN_CELLS)
    x[5] = x[1] * (float(freq_mhz) - 3750.0) / 2000.0
    return x


def site_targets(sites_rc: np.ndarray, shape: tuple[int, int], sigma_cells: float = 1.0) -> torch.Tensor:
    """Gaussian peak targets ``[OUT_CELLS, OUT_CELLS]`` (max over sites; exactly 1 at each site's
    nearest cell centre) for the sites inside the extended area."""
    g = torch.zeros(OUT_CELLS, OUT_CELLS)
    if len(sites_rc) == 0:
        return g
    yy, xx = torch.meshgrid(torch.arange(OUT_CELLS) + 0.5, torch.arange(OUT_CELLS) + 0.5, indexing="ij")
    for r, c in _to_cells(np.asarray(sites_rc, dtype=np.float64).reshape(-1, 2), shape, OUT_CELLS):
        if not (0 <= r < OUT_CELLS and 0 <= c < OUT_CELLS):
            continue
        cr, cc = np.floor(r) + 0.5, np.floor(c) + 0.5
        g = torch.maximum(g, torch.exp(-((yy - cr) ** 2 + (xx - cc) ** 2) / (2 * sigma_cells**2)))
    return g


def decode_sites(logits: torch.Tensor, shape: tuple[int, int], k: int = 8) -> np.ndarray:
    """The ``k`` strongest local maxima of ``logits [OUT_CELLS, OUT_CELLS]`` as ``[k, 3]``
    (row, col in window pixels, probability), refined by a soft-argmax over each 3×3 patch."""
    prob = torch.sigmoid(logits.float())
    peak = prob == F.max_pool2d(prob[None, None], 3, 1, 1)[0, 0]
    score = torch.where(peak, prob, torch.zeros_like(prob)).reshape(-1)
    top = torch.topk(score, k)
    ch, cw = cell_size(shape, OUT_CELLS)
    H, W = shape
    pad = F.pad(prob[None, None], (1, 1, 1, 1))[0, 0]
    out = []
    for s, i in zip(top.values.tolist(), top.indices.tolist()):
        r, c = divmod(i, OUT_CELLS)
        patch = pad[r : r + 3, c : c + 3]
        w = patch / patch.sum().clamp_min(1e-9)
        dr = float((w.sum(1) * torch.tensor([-1.0, 0.0, 1.0])).sum())
        dc = float((w.sum(0) * torch.tensor([-1.0, 0.0, 1.0])).sum())
        out.append(((r + 0.5 + dr) * ch - MARGIN * H - 0.5, (c + 0.5 + dc) * cw - MARGIN * W - 0.5, s))
    return np.array(out, dtype=np.float32)


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
        nn.Conv2d(cout, cout, 3, 1, padding=dilation, dilation=dilation, bias=False),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
    )


class SiteHeatmapNet(nn.Module):
    """A small U-Net: ``[B, 6, 128, 128]`` inputs → ``[B, 64, 64]`` site logits.

    Five scales down to 8² cells (a 64-px receptive step at 256² windows) with a dilated block and
    a global-context vector at the bottom, so a sample's loudness can vote for a site far away.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.stem = _block(IN_CHANNELS, w)  # 128
        self.d1 = _block(w, 2 * w, stride=2)  # 64
        self.d2 = _block(2 * w, 3 * w, stride=2)  # 32
        self.d3 = _block(3 * w, 4 * w, stride=2)  # 16
        self.d4 = _block(4 * w, 6 * w, stride=2)  # 8
        self.mid = _block(6 * w, 6 * w, dilation=2)
        self.ctx = nn.Linear(6 * w, 6 * w)
        self.u3 = _block(6 * w + 4 * w, 4 * w)  # 16
        self.u2 = _block(4 * w + 3 * w, 3 * w)  # 32
        self.u1 = _block(3 * w + 2 * w, 2 * w)  # 64
        self.head = nn.Conv2d(2 * w, 1, 1)
        nn.init.constant_(self.head.bias, -4.0)  # sites are rare: start near p = 0.02

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem(x)
        s1 = self.d1(s0)
        s2 = self.d2(s1)
        s3 = self.d3(s2)
        z = self.mid(self.d4(s3))
        z = z + self.ctx(z.mean((2, 3)))[:, :, None, None]

        def up(a, skip, block):
            return block(torch.cat([F.interpolate(a, size=skip.shape[-2:], mode="nearest"), skip], 1))

        y = up(up(up(z, s3, self.u3), s2, self.u2), s1, self.u1)
        return self.head(y)[:, 0]


def load_heatmap(path) -> SiteHeatmapNet:
    """A trained :class:`SiteHeatmapNet` from a directory holding ``weights.safetensors`` (or the file)."""
    from pathlib import Path

    from safetensors.torch import load_file

    p = Path(path)
    f = p / "weights.safetensors" if p.is_dir() else p
    if not f.exists():
        raise FileNotFoundError(
            f"no heat-map weights at {f}; train them with python -m wifidiff_fast.train.heatmap"
        )
    net = SiteHeatmapNet()
    net.load_state_dict(load_file(str(f)))
    return net.eval()


def predict_sites(net: SiteHeatmapNet, buildings, samples, freq_mhz: float, k: int = 3) -> np.ndarray:
    """The ``k`` strongest peaks ``[k, 3]`` (row, col, probability) of ``net`` for one window: the
    starts :mod:`wifidiff_fast.pipeline.physics_map` hands the localiser, and what the
    localisation evaluation scores."""
    with torch.no_grad():
        logits = net(heatmap_inputs(buildings, samples, freq_mhz)[None])[0]
    return decode_sites(logits, np.asarray(buildings).shape, k)
