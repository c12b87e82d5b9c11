"""CUDA-graph runner: the whole fixed-shape diffusion request captured once per shape bucket.

A bucket (:class:`BucketKey`) is everything that fixes the request's shapes and control flow:
maps per batch, grid H×W, candidates K, steps S, the first DDIM step (0, or ``round(R·S)`` for
midpoint reuse's stage 2), the network backend and the options that change the graph (η > 0,
known-sample write, the boost candidate). Per bucket, :class:`GraphCache` allocates static input
buffers (:class:`StaticBuffers`), warms the request function up on a side stream, captures it
into a ``torch.cuda.CUDAGraph`` and replays it for every later request of that bucket: the
inputs are copied into the static buffers, the graph is launched (NVTX ``wifidiff/<stage>[graph]``),
and the outputs are read from its static output tensors. Midpoint reuse gets its own bucket whose
graph starts at the midpoint (stage 2 only); stage 1 runs eagerly once per layout and is cached.

Host work stays outside the graph: rasterising samples, the seeded CPU noise and random points
(they become static inputs), and turning the outputs into numpy maps. Inside there is no host
synchronisation (no ``.item()``, no data-dependent shapes: the ops and the DDIM table are
designed for it, DESIGN §2b).

A request whose bucket was never captured is captured on first use and logged once; running out
of memory while capturing raises :class:`GraphCaptureOOM` with the bucket's size.

Status: written and unit-tested on the CPU (bucket keys, buffers, cache bookkeeping); the capture
and replay tests are marked ``gpu`` and run under ``make gpu-check`` — unverified on a GPU as of
2026-12-03 (no GPU was lent to this work).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .nvtx import annotate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BucketKey:
    batch: int  # maps per request
    H: int
    W: int
    K: int  # candidates per map
    S: int  # DDIM steps
    backend: str  # network backend
    start: int = 0  # first DDIM step in the graph (stage 2 of midpoint reuse: round(R·S))
    eta: float = 0.0  # DDIM η (> 0: per-step noise is a static input)
    known_write: bool = False
    boost_candidate: bool = True
    dtype: str = "float32"

    def __post_init__(self):
        for name in ("batch", "H", "W", "K", "S"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"a graph bucket needs {name} >= 1, got {getattr(self, name)}")
        if not 0 <= self.start < self.S:
            raise ValueError(
                f"a graph bucket's first step must be in 0..S-1, got start={self.start}, S={self.S}"
            )

    @property
    def stage(self) -> str:
        return "stage2" if self.start > 0 else "full"

    def input_spec(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """The static input buffers of this bucket (shapes and dtypes)."""
        n, H, W, K = self.batch, self.H, self.W, self.K
        spec = {
            "B": ((n, H, W), torch.float32),
            "S": ((n, H, W), torch.float32),
            "M": ((n, H, W), torch.float32),
            "x": ((n * K, H, W), torch.float32),
            "random_points": ((n, 0, 2), torch.int64),
        }  # resized to the request's n_random
        if self.eta > 0:
            spec["noise"] = ((self.S - self.start, n * K, H, W), torch.float32)
        return spec

    def nbytes(self, n_random: int = 0) -> int:
        """Bytes of the static inputs plus the candidate batch (a lower bound of the capture)."""
        total = 0
        for name, (shape, dtype) in self.input_spec().items():
            if name == "random_points":
                shape = (shape[0], n_random, 2)
            numel = 1
            for d in shape:
                numel *= d
            total += numel * torch.empty(0, dtype=dtype).element_size()
        return total + 3 * self.batch * (self.K + 1) * self.H * self.W * 4  # candidates, x̂0, scores' field

    def describe(self) -> str:
        d = asdict(self)
        return ", ".join(f"{k}={v}" for k, v in d.items())


class GraphCaptureOOM(RuntimeError):
    """Out of device memory while capturing a bucket's graph; the message gives its size."""


class StaticBuffers:
    """Named device tensors allocated once; :meth:`load` copies a request's inputs into them."""

    def __init__(self, spec: dict[str, tuple[tuple[int, ...], torch.dtype]], device):
        self.device = torch.device(device)
        self.tensors = {
            name: torch.zeros(shape, dtype=dtype, device=self.device) for name, (shape, dtype) in spec.items()
        }

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def load(self, **inputs: torch.Tensor) -> None:
        missing = set(self.tensors) - set(inputs)
        extra = set(inputs) - set(self.tensors)
        if missing or extra:
            raise ValueError(f"static inputs mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for name, value in inputs.items():
            buf = self.tensors[name]
            if tuple(value.shape) != tuple(buf.shape):
                raise ValueError(
                    f"input {name!r} has shape {tuple(value.shape)}, its bucket's buffer "
                    f"{tuple(buf.shape)}: a different shape is a different bucket"
                )
            if value.dtype != buf.dtype:
                raise TypeError(f"input {name!r} is {value.dtype}, its buffer {buf.dtype}")
            buf.copy_(value, non_blocking=True)


class CapturedGraph:
    """One bucket's graph: ``fn(**static_inputs) -> dict of tensors`` captured after warm-up."""

    def __init__(self, key: BucketKey, fn: Callable[..., dict], buffers: StaticBuffers, warmup: int = 2):
        self.key = key
        self.fn = fn
        self.buffers = buffers
        self.graph = torch.cuda.CUDAGraph()
        self.outputs: dict[str, torch.Tensor] = {}
        side = torch.cuda.Stream(buffers.device)
        side.wait_stream(torch.cuda.current_stream(buffers.device))
        try:
            with torch.cuda.stream(side):  # warm-up: lazy inits, allocator, cuDNN/cuBLAS plans
                for _ in range(warmup):
                    fn(**buffers.tensors)
            torch.cuda.current_stream(buffers.device).wait_stream(side)
            with torch.cuda.graph(self.graph):
                self.outputs = fn(**buffers.tensors)
        except torch.OutOfMemoryError as exc:
            raise GraphCaptureOOM(
                f"out of GPU memory while capturing the CUDA graph of bucket ({key.describe()}): its static "
                f"buffers alone take {key.nbytes() / 2**20:.0f} MiB; use fewer maps per batch or candidates "
                f"per request, or a smaller chunk ({exc})"
            ) from None

    def replay(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the captured request on ``inputs``; the returned tensors are the graph's static
        outputs (valid until the next replay of this bucket: copy what you keep)."""
        self.buffers.load(**inputs)
        with annotate(self.key.stage, "graph"):
            self.graph.replay()
        return self.outputs


class GraphCache:
    """Captured graphs per bucket; capture on first use (logged once), replay afterwards.

    ``build(key) -> fn`` returns the request function of a bucket; ``capture`` is the capture
    step (injectable so the bookkeeping is testable without a GPU). One lock per cache: a
    bucket's static buffers serve one request at a time."""

    def __init__(
        self,
        build: Callable[[BucketKey], Callable[..., dict]],
        device,
        capture: Callable[[BucketKey, Callable, StaticBuffers], object] | None = None,
        max_buckets: int = 16,
    ):
        self.build = build
        self.device = torch.device(device)
        self.capture = capture or (lambda key, fn, buffers: CapturedGraph(key, fn, buffers))
        self.max_buckets = int(max_buckets)
        self.graphs: dict[BucketKey, object] = {}
        self.lock = threading.Lock()
        self.captures = 0

    def spec(self, key: BucketKey, n_random: int) -> dict:
        spec = key.input_spec()
        if "random_points" in spec:
            spec["random_points"] = ((key.batch, n_random, 2), torch.int64)
        return spec

    def get(self, key: BucketKey, n_random: int = 0):
        graph = self.graphs.get(key)
        if graph is not None:
            return graph
        if len(self.graphs) >= self.max_buckets:
            oldest = next(iter(self.graphs))
            log.info(
                "graph cache full (%d buckets): dropping bucket (%s)", self.max_buckets, oldest.describe()
            )
            del self.graphs[oldest]
        log.info(
            "capturing a CUDA graph for bucket (%s); later requests of this shape replay it", key.describe()
        )
        buffers = StaticBuffers(self.spec(key, n_random), self.device)
        graph = self.capture(key, self.build(key), buffers)
        self.graphs[key] = graph
        self.captures += 1
        return graph

    def run(self, key: BucketKey, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        n_random = inputs["random_points"].shape[1] if "random_points" in inputs else 0
        with self.lock:
            graph = self.get(key, n_random)
            outputs = graph.replay(**inputs)
            return {k: v.clone() for k, v in outputs.items()}  # the next replay overwrites them


def request_function(est, key: BucketKey) -> Callable[..., dict]:
    """The diffusion request of ``est`` for one bucket as a pure tensor function: boost,
    condition, DDIM steps ``key.start .. S-1``, election — the estimator's own methods, so the
    graph computes exactly what the eager path does."""

    def fn(B, S, M, x, random_points, noise=None):
        from ..pipeline.boost import rough_map

        with annotate("boost", key.backend):
            R_hat = rough_map(est.runners.boost, B, S, M, tta=est.boost_params.tta)
        cond, crit = est._condition(R_hat, B, S, M, lambda _B, _n: random_points)
        noise_fn = None if noise is None else (lambda i: noise[i - key.start])
        cand = est.generator.denoise(
            x, cond, key.S, key.eta, key.start, known_write=key.known_write, noise_fn=noise_fn
        )
        out = est._elect(cand, R_hat, B, S, M, boost_candidate=key.boost_candidate)
        return {**out._asdict(), "R_hat": R_hat, "crit": crit}

    return fn
