"""Generation block (paper §IV-B) with midpoint reuse (RadioDiff-Flux idea, DESIGN §1).

K candidates per map are one batch of n·K, sampled with DDIM over a precomputed coefficient
table. With reuse ratio R, the first ``m = round(R·S)`` steps (stage 1) run under the static-only
condition (buildings only, no samples) from seeded noise; their K midpoints depend only on the
layout, the model, the sampler and the seed, so they are cached (:mod:`.cache`) and a repeated
layout skips them. Stage 2 runs steps ``m .. S-1`` under the full condition. R = 0 is exactly
plain sampling.

All noise comes from CPU generators seeded per map and per step, so a cache hit and a cache miss
give the same map, on any device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import ops
from ..models.denoiser import predict_eps
from ..models.features import Condition
from ..sampling.ddim import ddim_sample
from ..sampling.schedules import SchedulerConfig, ddim_table
from .cache import MidpointCache, midpoint_key
from .params import SamplerSettings

StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


def reuse_steps(reuse: float, steps: int) -> int:
    return int(round(reuse * steps))


def initial_noise(K: int, shape: tuple[int, int], seed: int, device) -> tuple[torch.Tensor, torch.Generator]:
    """x_T for one map: ``[K, H, W]`` from a CPU generator seeded with ``seed`` (device-independent)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn((K, *shape), generator=gen).to(device), gen


def _stream_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for sub-stream ``stream`` of ``seed`` (η-noise of step i, ...)."""
    return int(
        np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, np.uint64)[0] >> np.uint64(1)
    )


def make_eps_fn(
    denoiser: torch.nn.Module,
    table: torch.Tensor,
    timesteps: torch.Tensor,
    cond: Condition,
    prediction_type: str,
    chunk: int,
    group: int = 1,
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """ε_θ(x, t_i, cond) over a ``[N, H, W]`` batch whose condition rasters are ``[N, H, W]``,
    evaluated in chunks of ``chunk`` maps to bound memory. The rasters come in runs of ``group``
    identical rows (a map's candidates); an engine denoiser with a split form
    (``runtime.split``) uses that to condition once per run instead of at every call."""
    split = getattr(denoiser, "split", None)
    if split is not None:
        return split.make_eps_fn(table, timesteps, cond, prediction_type, chunk, group=group)
    B = cond.B
    n = B.shape[0]
    flags_s = torch.full((n,), float(cond.has_samples), device=B.device)
    flags_b = torch.full((n,), float(cond.has_boost), device=B.device)

    def eps_fn(x: torch.Tensor, i: int) -> torch.Tensor:
        t = timesteps[i].expand(x.shape[0])
        out = []
        for a in range(0, x.shape[0], chunk):
            sl = slice(a, a + chunk)
            out.append(
                predict_eps(
                    denoiser,
                    x[sl],
                    t[sl],
                    B[sl],
                    cond.S_prime[sl],
                    cond.M_prime[sl],
                    cond.R_hat[sl],
                    flags_s[sl],
                    flags_b[sl],
                    prediction_type,
                    table[i, 0],
                    table[i, 1],
                )
            )
        return torch.cat(out)

    return eps_fn


class CandidateGenerator:
    """The generation block of one estimator: seeded x_T, stage 1 (static-only condition, cached
    fp16 midpoints) and stage 2 (full condition), with the fused ``ddim_step`` on ``backend``.

    ``networks`` is read at every call (``.denoiser``: the eager module or an engine runner);
    ``model_id`` keys the midpoint cache. Thread-safe: the networks are only read, the cache has
    its own lock and the DDIM tables are built idempotently."""

    def __init__(
        self,
        networks,
        scheduler: SchedulerConfig,
        model_id: str,
        cache: MidpointCache,
        device: torch.device,
        chunk: int,
        backend: str | None = None,
    ):
        self.networks = networks
        self.scheduler = scheduler
        self.model_id = model_id
        self.cache = cache
        self.device = device
        self.chunk = chunk
        self.backend = backend
        self._tables: dict = {}

    def generate(
        self,
        cond: Condition,
        layouts: list[np.ndarray],
        sampler: SamplerSettings,
        known_write: bool = False,
        callback: StepCallback | None = None,
    ) -> torch.Tensor:
        """``[n, K, H, W]`` candidates (model space) for the n maps of ``cond`` (rasters ``[n, H,
        W]``); ``layouts`` are their building maps (the cache keys), ``callback`` is called after
        every DDIM step."""
        n, H, W = cond.B.shape
        x, noise_fn = self.start(n, H, W, sampler)
        m = sampler.stage1_steps
        if m > 0:
            x = self.midpoints(x, cond.B, layouts, sampler, noise_fn, callback)
        return self.denoise(
            x,
            cond,
            sampler.steps,
            sampler.eta,
            m,
            known_write=known_write,
            noise_fn=noise_fn,
            callback=callback,
        )

    def start(self, n: int, H: int, W: int, sampler: SamplerSettings):
        """x_T ``[n·K, H, W]`` (seeded per map) and the η-noise function of step i (or None)."""
        dev, K, seed = self.device, sampler.candidates, sampler.seed
        x = torch.cat([initial_noise(K, (H, W), seed, dev)[0] for _ in range(n)])
        noise_fn = None
        if sampler.eta > 0:

            def noise_fn(i: int) -> torch.Tensor:
                g = torch.Generator().manual_seed(_stream_seed(seed, 1 + i))
                z = torch.randn((K, H, W), generator=g)
                return z.repeat(n, 1, 1).to(dev)

        return x, noise_fn

    def table(self, steps: int, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The DDIM table and timesteps on the device, built once per (steps, η): a CUDA-graph
        capture must not copy from the host."""
        key = (int(steps), float(eta))
        found = self._tables.get(key)
        if found is None:
            found = self._tables[key] = ddim_table(self.scheduler, steps, eta, device=self.device)
        return found

    def midpoints(
        self,
        x: torch.Tensor,
        B: torch.Tensor,
        layouts: list[np.ndarray],
        sampler: SamplerSettings,
        noise_fn: Callable[[int], torch.Tensor] | None,
        callback: StepCallback | None = None,
    ) -> torch.Tensor:
        """Stage 1: the K midpoints of each layout after ``m = round(R·S)`` static-only steps from
        ``x [n·K, H, W]``, cached as fp16. Both hit and miss continue from the fp16 value, so
        results do not depend on the cache state. Returns ``[n·K, H, W]``."""
        dev, sch = self.device, self.scheduler
        n, H, W = B.shape
        K, steps, m = sampler.candidates, sampler.steps, sampler.stage1_steps
        table, timesteps = ddim_table(sch, steps, sampler.eta, device=dev)
        config = {"K": K, "steps": steps, "eta": sampler.eta, **sch.to_dict()}
        keys = [midpoint_key(b, self.model_id, config, sampler.seed, m) for b in layouts]
        mids = [self.cache.get(k) for k in keys]
        missing = [i for i, v in enumerate(mids) if v is None]
        if missing:
            sel = torch.tensor(missing, device=dev)
            xs = x.view(n, K, H, W)[sel].reshape(-1, H, W)
            eps_fn = make_eps_fn(
                self.networks.denoiser,
                table,
                timesteps,
                Condition.static(B[sel].repeat_interleave(K, 0)),
                sch.prediction_type,
                self.chunk,
                group=K,
            )
            sub_noise = (
                None if noise_fn is None else (lambda i: noise_fn(i).view(n, K, H, W)[sel].reshape(-1, H, W))
            )
            mid, _ = ddim_sample(
                eps_fn,
                xs,
                table,
                0,
                m,
                step_fn=self._step_fn(None, steps),
                noise_fn=sub_noise,
                callback=callback,
                clip_sample=sch.clip_sample,
                clip_range=sch.clip_sample_range,
            )
            for j, i in enumerate(missing):
                mids[i] = self.cache.put(keys[i], mid.view(len(missing), K, H, W)[j])
        return torch.cat([v.to(dev, torch.float32) for v in mids])

    def denoise(
        self,
        x: torch.Tensor,
        cond: Condition,
        steps: int,
        eta: float,
        start: int = 0,
        *,
        known_write: bool = False,
        noise_fn: Callable[[int], torch.Tensor] | None = None,
        callback: StepCallback | None = None,
    ) -> torch.Tensor:
        """Stage 2: DDIM steps ``start .. steps-1`` under ``cond`` (n maps) from ``x [n·K, H, W]``
        → ``[n, K, H, W]``. Graph-capturable: no host synchronisation. ``known_write`` writes S′
        into x̂0 at the M′ pixels at every step but the last."""
        n, H, W = cond.B.shape
        K = x.shape[0] // n
        sch = self.scheduler
        table, timesteps = self.table(steps, eta)
        eps_fn = make_eps_fn(
            self.networks.denoiser,
            table,
            timesteps,
            cond.repeat(K),
            sch.prediction_type,
            self.chunk,
            group=K,
        )
        x, _ = ddim_sample(
            eps_fn,
            x,
            table,
            start,
            steps,
            step_fn=self._step_fn(cond if known_write else None, steps),
            noise_fn=noise_fn,
            callback=callback,
            clip_sample=sch.clip_sample,
            clip_range=sch.clip_sample_range,
        )
        return x.clamp(-1, 1).view(n, K, H, W)

    def _step_fn(self, known: Condition | None, steps: int):
        """The fused DDIM step; with ``known``, S′ is written at the M′ pixels at steps < S-1."""

        def step_fn(x_t, eps, tbl, i, noise=None, clip_sample=True, clip_range=1.0):
            # the known raster [n, H, W] is shared by each map's K candidates (no repeat needed)
            write = {}
            if known is not None and i < steps - 1:
                write = dict(known=known.S_prime, known_mask=known.M_prime)
            return ops.ddim_step(
                x_t,
                eps,
                tbl,
                i,
                noise=noise,
                clip_sample=clip_sample,
                clip_range=clip_range,
                backend=self.backend,
                **write,
            )

        return step_fn
