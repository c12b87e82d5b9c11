"""One interface for a network on any backend: call it like the module, get an fp32 tensor back.

A :class:`NetworkRunner` holds one implementation per *signature* — the inputs' shapes without
the batch dimension and their dtypes — because exported backends are built per input shape
(with a dynamic batch). :meth:`NetworkRunner.prepare` builds or loads the implementation for a
signature ahead of time (the estimator does it before it starts a request's clock); a call with a
signature that was never prepared prepares it on the spot and logs that once, so a new grid size
is slow once, never an error.

Floating inputs are cast to the runner's ``dtype`` and 4-D inputs are laid out ``channels_last``
when asked (oneDNN and cuDNN convolutions are faster in NHWC); outputs always come back fp32 and
contiguous, so the pipeline never sees the difference. Inputs named in ``broadcast`` (by position)
have batch 1 and are broadcast over the others' batch (the split denoiser's per-map condition,
:mod:`.split`); exported backends keep their batch static.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable

import torch

from .artifacts import ArtifactCache
from .nvtx import annotate

log = logging.getLogger(__name__)
Signature = tuple


def signature(inputs: tuple[torch.Tensor, ...]) -> Signature:
    return tuple((tuple(x.shape[1:]), str(x.dtype).replace("torch.", "")) for x in inputs)


class NetworkRunner:
    """``eager``: the module itself (a copy when the layout or dtype changes)."""

    backend = "eager"
    # the denoiser's split form (runtime.split.SplitDenoiser), set by the engine where the backend
    # runs it; None: callers use this runner on the full input
    split = None

    def __init__(
        self,
        module: torch.nn.Module,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        cache: ArtifactCache | None = None,
        name: str = "net",
        broadcast: tuple[int, ...] = (),
    ):
        self.device = torch.device(device)
        self.broadcast = tuple(int(i) for i in broadcast)
        self.dtype = dtype
        self.channels_last = bool(channels_last)
        self.name = name
        self.cache = cache if cache is not None else ArtifactCache()
        self.source = module  # the reference module, never modified
        self.module = module
        if self.channels_last:
            self.module = copy.deepcopy(module).to(memory_format=torch.channels_last)
        self.module.eval()
        self._impls: dict[Signature, Callable] = {}
        self._lock = threading.Lock()
        self._warned: set[Signature] = set()

    # -- what each backend provides ---------------------------------------------------------
    def _build(self, inputs: tuple[torch.Tensor, ...]) -> Callable:
        """An implementation for the signature of ``inputs`` (examples on the right device)."""
        if self.dtype == torch.float32:
            return self.module

        def autocast_module(*xs):
            with torch.autocast(self.device.type, dtype=self.dtype):
                return self.module(*xs)

        return autocast_module

    # -- shared machinery ---------------------------------------------------------------------
    def _cast(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        out = []
        for x in inputs:
            x = x.to(self.device)
            if x.is_floating_point():
                x = x.float()  # the reference's input dtype; autocast/exported graphs cast inside
                if x.dim() == 4:
                    fmt = torch.channels_last if self.channels_last else torch.contiguous_format
                    x = x.contiguous(memory_format=fmt)
                else:
                    x = x.contiguous()
            else:
                x = x.contiguous()  # e.g. expanded timesteps (stride 0) → a real buffer
            out.append(x)
        return tuple(out)

    def _signature(self, inputs: tuple[torch.Tensor, ...]) -> Signature:
        return signature(inputs)

    def prepare(self, *example_inputs: torch.Tensor) -> None:
        """Build or load the implementation for these inputs' signature (any batch size)."""
        inputs = self._cast(example_inputs)
        sig = self._signature(inputs)
        with self._lock:
            if sig not in self._impls:
                with annotate(f"prepare/{self.name}", self.backend):
                    impl = self._build(inputs)
                    with torch.inference_mode():
                        impl(*inputs)  # warm-up: first-call allocations, lazy compilation
                self._impls[sig] = impl

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        inputs = self._cast(inputs)
        sig = self._signature(inputs)
        impl = self._impls.get(sig)
        if impl is None:
            if sig not in self._warned:
                self._warned.add(sig)
                log.warning(
                    "%s[%s]: no prepared implementation for inputs %s; preparing it now "
                    "(call prepare() ahead of requests to keep this off the request path)",
                    self.name,
                    self.backend,
                    sig,
                )
            self.prepare(*inputs)
            impl = self._impls[sig]
        out = impl(*inputs)
        if isinstance(out, (list, tuple)):
            out = out[0]
        return out.float().contiguous()

    @property
    def prepared(self) -> list[Signature]:
        return list(self._impls)


class CompiledRunner(NetworkRunner):
    """``compile``: ``torch.compile`` (inductor); ``reduce-overhead`` (CUDA graphs) on a GPU.

    Compiles on :meth:`prepare` (first call per shape); inductor's own on-disk cache makes a
    second process compile faster, not instantly — the ``aot`` backend is the one that loads."""

    backend = "compile"

    def _signature(self, inputs):
        return (inputs[0].shape[0], *signature(inputs))  # compiled per batch size (dynamic=False)

    def _build(self, inputs):
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        compiled = torch.compile(super()._build(inputs), mode=mode, dynamic=False)
        return compiled


class Autocast(torch.nn.Module):
    """``module`` run under autocast to ``dtype`` (norms and reductions stay fp32), fp32 out:
    the form exported by the ``aot`` backend for bf16/fp16 (torch.export records the region)."""

    def __init__(self, module: torch.nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module, self.device_type, self.dtype = module, device_type, dtype

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | None = None,
        stem_cond: torch.Tensor | None = None,
        head_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # explicit arguments (not *xs): torch.export matches dynamic shapes to named inputs; the
        # last two are the split denoiser's condition terms (models.split)
        rest = tuple(a for a in (t, stem_cond, head_cond) if a is not None)
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.module(x, *rest).float()


def dynamic_batch_examples(
    inputs: tuple[torch.Tensor, ...], min_batch: int = 2, broadcast: tuple[int, ...] = ()
) -> tuple[torch.Tensor, ...]:
    """Example inputs with at least ``min_batch`` rows: exporting with a batch of 1 would
    specialise the batch dimension to 1. ``broadcast`` inputs keep their batch of 1."""
    n = inputs[0].shape[0]
    if n >= min_batch:
        return inputs
    reps = -(-min_batch // n)
    return tuple(
        x if i in broadcast else x.repeat(reps, *([1] * (x.dim() - 1)))[: max(min_batch, n)]
        for i, x in enumerate(inputs)
    )


def make_runner(
    backend: str,
    module: torch.nn.Module,
    device,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    cache: ArtifactCache | None = None,
    name: str = "net",
    broadcast: tuple[int, ...] = (),
) -> NetworkRunner:
    """A runner for an already *selected* backend (chosen by :func:`wifidiff_fast.runtime.backends.select`)."""
    if backend == "eager":
        cls = NetworkRunner
    elif backend == "compile":
        cls = CompiledRunner
    elif backend == "aot":
        from .aot import AOTRunner as cls
    elif backend == "onnx":
        from .onnxrt import OnnxRuntimeRunner as cls
    elif backend == "tensorrt":
        from .trt import TensorRTRunner as cls
    else:
        raise ValueError(f"unknown network backend {backend!r}")
    return cls(
        module, device, dtype=dtype, channels_last=channels_last, cache=cache, name=name, broadcast=broadcast
    )
