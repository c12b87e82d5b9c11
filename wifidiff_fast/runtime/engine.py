"""A checkpoint's three networks (AttUnet, denoiser, correction ResNet) on one network backend.

:class:`NetworkEngine` has the attributes the pipeline reads from a ``Networks`` object
(``boost``, ``denoiser``, ``correction``), each a :class:`~.runners.NetworkRunner`, so the
estimator runs the same code on every backend. :meth:`NetworkEngine.prepare` builds or loads
every implementation a request of a given grid needs, ahead of the request (the estimator calls
it before a request's clock starts; services call it at start-up).

On the backends that can (:data:`~.split.SPLIT_BACKENDS`) the denoiser runner carries its split
form (``engine.denoiser.split``, :mod:`.split`): the pipeline's generation loop then conditions
once per map instead of once per denoiser call. ``split=False`` (or, when ``split`` is not
given, ``WIFIDIFF_SPLIT_DENOISER=0``) keeps the unsplit call: the fallback and the A/B baseline.
"""

from __future__ import annotations

import logging
import time

import torch

from .. import _env
from ..models.features import BOOST_CHANNELS, CORRECTION_CHANNELS, DENOISER_CHANNELS
from .artifacts import ArtifactCache
from .backends import select
from .runners import make_runner
from .split import SPLIT_BACKENDS, SplitDenoiser

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def dtype_arg(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float32
    if str(dtype) not in DTYPES:
        raise ValueError(f"network dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[str(dtype)]


class NetworkEngine:
    def __init__(
        self,
        nets,
        device: torch.device | str,
        backend: str = "auto",
        dtype=torch.float32,
        channels_last: bool | None = None,
        cache: ArtifactCache | None = None,
        split: bool | None = None,
    ):
        self.device = torch.device(device)
        self.backend = select(backend, self.device)
        self.dtype = dtype_arg(dtype)
        # NHWC convolutions measured 2-3x faster on these CPUs' oneDNN (engine_cpu.md); TensorRT
        # picks its own layout.
        self.channels_last = (self.backend != "tensorrt") if channels_last is None else bool(channels_last)
        self.cache = cache if cache is not None else ArtifactCache()
        kw = dict(dtype=self.dtype, channels_last=self.channels_last, cache=self.cache)
        self.boost = make_runner(self.backend, nets.boost, self.device, name="boost", **kw)
        self.denoiser = make_runner(self.backend, nets.denoiser, self.device, name="denoiser", **kw)
        self.correction = make_runner(self.backend, nets.correction, self.device, name="correction", **kw)
        if (_env.split_denoiser() if split is None else split) and self.backend in SPLIT_BACKENDS:
            try:
                self.denoiser.split = SplitDenoiser(nets.denoiser, self.backend, self.device, **kw)
            except ValueError as exc:  # an architecture the split cannot serve: the unsplit call
                log.warning("denoiser: not split (%s); every call gets the full input", exc)
        self.source = nets

    def describe(self) -> str:
        return (
            f"{self.backend} ({str(self.dtype).replace('torch.', '')}"
            f"{', channels_last' if self.channels_last else ''}"
            f"{', split denoiser' if self.denoiser.split is not None else ''})"
        )

    def prepare(
        self, H: int, W: int, n_maps: int = 1, tta: bool = False, denoiser_batches=(16,), boost: bool = True
    ) -> float:
        """Build or load everything a request on an ``H × W`` grid needs; returns seconds spent.

        ``denoiser_batches``: the chunk sizes the sampler will call the denoiser with (the
        ``compile`` backend specialises on the batch; the exported ones serve any batch)."""
        t0 = time.perf_counter()
        dev = self.device
        grids = [(H, W)] + ([(W, H)] if tta and H != W else [])
        if boost:
            for h, w in grids:
                self.boost.prepare(torch.zeros(n_maps * (4 if tta else 1), BOOST_CHANNELS, h, w, device=dev))
            self.correction.prepare(torch.zeros(n_maps, CORRECTION_CHANNELS, H, W, device=dev))
        for b in sorted(set(int(b) for b in denoiser_batches if b > 0)):
            if self.denoiser.split is not None:  # what the generation loop calls (see the notes)
                self.denoiser.split.prepare(H, W, b)
                continue
            self.denoiser.prepare(
                torch.zeros(b, DENOISER_CHANNELS, H, W, device=dev),
                torch.zeros(b, dtype=torch.long, device=dev),
            )
        return time.perf_counter() - t0
