"""The denoiser conditioned once per request (issue #12): the engine's form of the ε-network.

Of the denoiser's seven input channels only x_t changes over a request's K × S evaluations; the
unsplit call rebuilds, re-lays-out, re-casts and re-convolves the other six at every one of them.
:class:`SplitDenoiser` runs :class:`~wifidiff_fast.models.split.SplitUNet` instead: the
condition's stem and head terms once per map (eager, fp32, already in the memory format the
step reads), then per step only x_t through a :class:`~.runners.NetworkRunner` whose two
condition inputs have batch 1 and are broadcast over the map's candidates. Same weights, same
outputs up to float summation order (fp32) or low-precision rounding (bf16): see
``tests/runtime/test_split_denoiser.py`` for the tolerances. The unsplit runner stays the
fallback (other backends, ``NetworkEngine(split=False)``, ``WIFIDIFF_SPLIT_DENOISER=0``) and
``UNet.forward`` the specification.

Measured on the paper workload (2-core Xeon, bf16 networks, 2026-12-03, quiet machine,
``python -m wifidiff_fast.bench paper --dtype bfloat16 ...``): AOTInductor 3.90 s per request
split vs 5.18 s unsplit, 3.47× and 2.44× faster than the eager fp32 reference
(docs/results/engine_cpu_split_aot_bf16.json, engine_cpu_quiet_aot_bf16.json).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.denoiser import eps_from_target, to_target
from ..models.features import X_T_CHANNEL, Condition, denoiser_condition
from ..models.split import SplitUNet
from .artifacts import ArtifactCache
from .runners import make_runner

# backends that run the split form (measured on the CPU, issue #12); compile, ONNX and TensorRT
# keep the unsplit call: each would need the broadcast condition inputs wired into its own build
SPLIT_BACKENDS = ("eager", "aot")
BROADCAST = (2, 3)  # the step's inputs (x_t, t, stem_cond, head_cond): the condition terms


def map_segments(rows: int, chunk: int, group: int) -> list[tuple[int, int, int]]:
    """``(start, stop, map)`` row ranges: chunks of at most ``chunk`` rows, cut where a map's run
    of ``group`` rows ends, so every call conditions on one map."""
    if group < 1 or rows % group:
        raise ValueError(f"{rows} rows do not split into runs of {group} per map")
    out = []
    for a in range(0, rows, chunk):
        stop = min(a + chunk, rows)
        while a < stop:
            b = min(stop, (a // group + 1) * group)
            out.append((a, b, a // group))
            a = b
    return out


class SplitDenoiser:
    """The denoiser ``unet`` (a time-conditioned ``UNet``) in split form on ``backend``."""

    def __init__(
        self,
        unet: torch.nn.Module,
        backend: str,
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        cache: ArtifactCache | None = None,
    ):
        if backend not in SPLIT_BACKENDS:
            raise ValueError(f"the split denoiser runs on {', '.join(SPLIT_BACKENDS)}, not {backend!r}")
        self.device = torch.device(device)
        self.model = SplitUNet(unet, X_T_CHANNEL).eval()
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.step = make_runner(
            backend,
            self.model,
            self.device,
            dtype=dtype,
            channels_last=channels_last,
            cache=cache,
            name="denoiser[split]",
            broadcast=BROADCAST,
        )

    def condition(
        self, B, S_prime, M_prime, R_hat, has_samples, has_boost
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The condition terms of ``n`` maps (rasters ``[n, H, W]``, flags ``[n]``): fp32 and laid
        out as the step runner reads them, so that no step converts them again."""
        cond = denoiser_condition(B, S_prime, M_prime, R_hat, has_samples, has_boost).to(self.device)
        with torch.no_grad():
            stem, head = self.model.condition(cond)
        return stem.contiguous(memory_format=self.format), head.contiguous(memory_format=self.format)

    def __call__(
        self, x_t: torch.Tensor, t: torch.Tensor, stem_cond: torch.Tensor, head_cond: torch.Tensor
    ) -> torch.Tensor:
        """``x_t [N, 1, H, W]``, ``t [N]``, one map's condition terms (batch 1) → ``[N, 1, H, W]``
        fp32."""
        if stem_cond.shape[0] != 1 or head_cond.shape[0] != 1:
            raise ValueError("the split denoiser takes one map's condition (batch 1) per call")
        return self.step(x_t, t, stem_cond, head_cond)

    def prepare(self, H: int, W: int, batch: int) -> None:
        """Build or load the step for an ``H × W`` grid (any batch: exported ones are dynamic)."""
        z = torch.zeros(1, H, W, device=self.device)
        flags = torch.ones(1, device=self.device)
        stem, head = self.condition(z, z, z, z, flags, flags)
        x_t = torch.zeros(max(1, batch), 1, H, W, device=self.device)
        self.step.prepare(x_t, torch.zeros(x_t.shape[0], dtype=torch.long, device=self.device), stem, head)

    def make_eps_fn(
        self,
        table: torch.Tensor,
        timesteps: torch.Tensor,
        cond: Condition,
        prediction_type: str,
        chunk: int,
        group: int = 1,
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """:func:`wifidiff_fast.pipeline.generate.make_eps_fn` in split form: the rasters of
        ``cond`` (``[N, H, W]``) come in runs of ``group`` identical rows (a map's candidates);
        each run's condition is computed here, once, and every step evaluates x_t alone."""
        B = cond.B
        rows = B.shape[0]
        segments = map_segments(rows, chunk, group)
        first = slice(None, None, group)  # one row per map
        n = rows // group
        flags_s = torch.full((n,), float(cond.has_samples), device=B.device)
        flags_b = torch.full((n,), float(cond.has_boost), device=B.device)
        R_maps = cond.R_hat[first]
        stem, head = self.condition(
            B[first], cond.S_prime[first], cond.M_prime[first], R_maps, flags_s, flags_b
        )

        def eps_fn(x: torch.Tensor, i: int) -> torch.Tensor:
            t = timesteps[i].expand(x.shape[0])
            out = []
            for a, b, m in segments:
                x_t, one = x[a:b], slice(m, m + 1)
                pred = self(x_t.unsqueeze(1), t[a:b], stem[one], head[one])[:, 0]
                pred = to_target(pred, R_maps[one], flags_s[one], flags_b[one], prediction_type)
                out.append(eps_from_target(pred, x_t, prediction_type, table[i, 0], table[i, 1]))
            return out[0] if len(out) == 1 else torch.cat(out)

        return eps_fn
