"""The Estimator: boost → generation → election in one call (the one place that knows every op).

    >>> from wifidiff_fast import RadioMapEstimator
    >>> est = RadioMapEstimator.from_pretrained("small", device="cpu")
    >>> res = est.estimate(buildings, samples, candidates=64, steps=10, reuse=0.0, seed=0)
    >>> res.rss_dbm, res.uncertainty_db, res.elected, res.timings_ms

The boost map R̂ joins the election as one more candidate (index K, ``res.elected == K``): on
the validation region the boost map was more accurate than the diffusion candidates of the
shipped checkpoint (docs/RESULTS.md), and the election's job is to return the best map it is
offered. ``candidates=0`` skips generation and election and returns R̂ after the boost block alone
(one AttUnet pass, or 8 with the checkpoint's test-time symmetry averaging ``boost.tta``).
Set ``"pipeline": {"boost_candidate": false}`` in a checkpoint's config for the paper's pure
election among diffusion candidates.

``known_write=True`` (or ``"pipeline": {"known_sample_write": true}``) makes every stage-2 DDIM
step but the last write the condition raster S′ into x̂0 at the M′ pixels (the fused ``ddim_step``
does it in the same pass): the candidates are steered through the measurements and the boost
points, while the last step stays the network's own prediction so that the election's sample
error still tells candidates apart.

Deterministic for a given seed (all noise comes from CPU generators seeded per map and per step,
so a cache hit and a cache miss give the same map), and safe to call from several threads (the
networks are only read; the midpoint cache has its own lock).
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .. import ops
from ..data.protocol import rasterise
from ..data.units import model_to_dbm
from ..data.validate import check_buildings, check_samples
from ..models.checkpoint import CheckpointError, load_checkpoint
from ..models.features import correction_inputs
from ..ops.backend import BACKENDS as OP_BACKENDS
from ..physics.prior import COMPATIBLE_VERSIONS, PropagationParams
from ..reference.elect import ElectionParams
from ..runtime.engine import NetworkEngine
from ..runtime.progress import progress
from ..runtime.timing import StageTimer
from ..sampling.ddim import ddim_sample
from ..sampling.schedules import SchedulerConfig, ddim_table
from .boost import boost_condition, random_points_per_map, rough_map
from .cache import MidpointCache, midpoint_key
from .generate import initial_noise, make_eps_fn, reuse_steps
from .params import BoostParams
from .physics_map import PhysicsSettings, physics_map

CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
MIN_SIZE = 32
MAX_CANDIDATES = 1024
MAX_STEPS = 1000
BACKENDS = ("auto", *OP_BACKENDS)
MODES = ("physics", "diffusion")
# Called after every DDIM step of the current request (the progress bar); a context variable so
# concurrent requests from several threads each tick their own bar.
_step_callback: contextvars.ContextVar = contextvars.ContextVar("wifidiff_step_callback", default=None)


@dataclass(frozen=True)
class PhysicsConfig:
    """The checkpoint's physics-calibration block, typed."""

    params: PropagationParams  # the calibrated prior
    settings: PhysicsSettings  # localisation and map settings
    default_freq_mhz: float  # carrier when the caller gives none


def physics_block(config: dict) -> PhysicsConfig | None:
    """The checkpoint's physics-calibration block as a :class:`PhysicsConfig`.

    ``None`` when the checkpoint has none; a ``ValueError`` naming the fix when it is malformed or
    from another prior version.
    """
    block = config.get("physics")
    if block is None:
        return None
    fix = "re-run `python -m wifidiff_fast.physics.calibrate --into CHECKPOINT_DIR`"
    if not isinstance(block, dict) or "params" not in block:
        raise ValueError(f"the checkpoint's physics-calibration block is malformed (no 'params'); {fix}")
    if block.get("version") not in COMPATIBLE_VERSIONS:
        raise ValueError(
            f"the checkpoint's physics-calibration block has version {block.get('version')!r}, "
            f"this build reads {list(COMPATIBLE_VERSIONS)}; {fix}"
        )
    params = PropagationParams.from_dict(block["params"])
    settings = PhysicsSettings.from_dict(block.get("settings", {}))
    return PhysicsConfig(params, settings, float(block.get("default_freq_mhz", 5750.0)))


@dataclass
class EstimateResult:
    """One estimated map. Arrays are numpy; dBm maps are NaN on buildings."""

    rss_dbm: np.ndarray  # float32 [H, W]
    uncertainty_db: np.ndarray  # float32 [H, W]: spread of the K diffusion candidates, dB (NaN if K=0)
    scores: np.ndarray  # float32 [K(+1)]: election scores (lower is better)
    elected: int  # elected candidate; K = the boost map, −1 = candidates=0
    critical_points: np.ndarray  # int64 [n, 2]: the boost block's critical points (row, col)
    R_hat_dbm: np.ndarray  # float32 [H, W]: the boost block's rough map
    alpha: float  # the correction factor α of the election
    timings_ms: dict = field(default_factory=dict)
    candidates_dbm: np.ndarray | None = None  # float32 [K(+1), H, W] (the election's field) on request
    mode: str = "diffusion"  # "physics" (transmitter-aware, the shipped default) or "diffusion"
    # physics mode: float32 [capacity, 5] transmitter hypotheses (row, col, offset_db, rot_rad,
    # score; best first) of which the first n_sites explain the samples
    transmitters: np.ndarray | None = None
    n_sites: int = 0


def _stream_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for sub-stream ``stream`` of ``seed`` (η-noise of step i, ...)."""
    return int(
        np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, np.uint64)[0] >> np.uint64(1)
    )


def _device_arg(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")
    return dev


def _int_arg(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _real_arg(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _resolve_checkpoint(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_dir():
        return path
    packaged = CHECKPOINTS_DIR / str(name_or_path)
    if packaged.is_dir():
        return packaged
    available = sorted(p.name for p in CHECKPOINTS_DIR.glob("*") if (p / "config.json").is_file())
    raise CheckpointError(
        f"no checkpoint {str(name_or_path)!r}: not a directory and not a packaged checkpoint "
        f"(packaged: {', '.join(available) or 'none'})"
    )


class RadioMapEstimator:
    """See the module notes. ``backend`` picks the fused ops' implementation (``reference`` = the
    plain PyTorch ops); ``network_backend`` the networks' (:mod:`wifidiff_fast.runtime`:
    ``eager`` — the default and the reference —, ``compile``, ``aot``, ``onnx``, ``tensorrt`` or
    ``auto``), in ``network_dtype`` with ``channels_last`` activations (default: on for every
    backend but eager and tensorrt). ``progress`` shows a bar over the DDIM steps (default: when
    stderr is a terminal)."""

    def __init__(
        self,
        nets,
        config: dict,
        device: str | torch.device = "cpu",
        backend: str = "auto",
        cache: MidpointCache | None = None,
        chunk: int | None = None,
        network_backend: str = "eager",
        network_dtype=None,
        channels_last: bool | None = None,
        progress: bool | None = None,
        cuda_graphs: bool = False,
    ):
        self.device = _device_arg(device)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        runs_on = {"cpp": "cpu", "cuda": "cuda", "triton": "cuda"}.get(backend)
        if runs_on is not None and self.device.type != runs_on:
            raise ValueError(f"backend {backend!r} does not run on device {self.device}; use backend='auto'")
        self.backend = None if backend == "auto" else backend
        self.nets = nets
        self.config = config
        norm = config["normalisation"]
        self.p_min, self.p_max = float(norm["p_min_dbm"]), float(norm["p_max_dbm"])
        self.scheduler = SchedulerConfig(**config["scheduler"])
        self.defaults = dict(config.get("sampler_defaults", {}))
        self.boost_params = BoostParams(**config.get("boost", {}))
        # The boost map R̂ joins the election as one more candidate (index K): see the module notes.
        self.boost_candidate = bool(config.get("pipeline", {}).get("boost_candidate", True))
        self.known_write = bool(config.get("pipeline", {}).get("known_sample_write", False))
        # One source for the dB span: the normalisation range (a stale copy would mis-scale τ, the
        # Friis drops and the uncertainty map).
        self.election_params = ElectionParams(
            **{**config.get("election", {}), "db_span": self.p_max - self.p_min}
        )
        self.model_id = config["weights"]["sha256"]
        self.mode = config.get("pipeline", {}).get("mode", "diffusion")
        if self.mode not in MODES:
            raise ValueError(f"checkpoint pipeline.mode must be one of {MODES}, got {self.mode!r}")
        self.physics = physics_block(config)
        self.physics_learned_fallback = bool(config.get("pipeline", {}).get("physics_learned_fallback", True))
        if self.mode == "physics" and self.physics is None:
            raise ValueError(
                "the checkpoint's pipeline.mode is 'physics' but it has no physics-calibration "
                "block; run `python -m wifidiff_fast.physics.calibrate --into CHECKPOINT_DIR`"
            )
        self.cache = cache if cache is not None else MidpointCache()
        # CPU: small chunks keep the memory of a 64-candidate batch bounded; GPU: one batch.
        self.chunk = chunk or (16 if self.device.type == "cpu" else 256)
        self.progress = progress
        # The networks as the pipeline calls them: the eager modules themselves (the reference),
        # or a NetworkEngine of compiled/exported runners with the same attributes.
        self.engine = None
        if (
            network_backend != "eager"
            or channels_last
            or network_dtype not in (None, "float32", torch.float32)
        ):
            self.engine = NetworkEngine(
                nets,
                self.device,
                network_backend,
                network_dtype,
                bool(network_backend != "eager") if channels_last is None else channels_last,
            )
        self.runners = self.engine if self.engine is not None else nets
        self._tables: dict = {}
        # CUDA graphs: the whole diffusion request captured per shape bucket (runtime.graphs)
        self.graphs = None
        if cuda_graphs:
            if self.device.type != "cuda":
                raise ValueError("cuda_graphs=True needs device='cuda'")
            from ..runtime.graphs import GraphCache, request_function

            self.graphs = GraphCache(lambda key: request_function(self, key), self.device)
        if self.engine is not None and chunk is None and self.device.type == "cpu":
            # compiled networks on the CPU: one call per map's K candidates measured fastest
            # (fewer, larger oneDNN calls; engine_cpu.md) — the eager reference keeps 16
            self.chunk = 64
        self._ready: set = set()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = "small",
        device: str = "cpu",
        backend: str = "auto",
        cache_bytes: int = 256 * 2**20,
        cache_dir: str | Path | None = None,
        chunk: int | None = None,
        network_backend: str = "eager",
        network_dtype=None,
        channels_last: bool | None = None,
        progress: bool | None = None,
        cuda_graphs: bool = False,
    ) -> RadioMapEstimator:
        """Load a packaged checkpoint by name (``"small"``) or a checkpoint directory."""
        dev = _device_arg(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' was requested but this torch sees no CUDA device; use device='cpu'"
            )
        nets, config = load_checkpoint(_resolve_checkpoint(name_or_path), device=dev)
        return cls(
            nets,
            config,
            dev,
            backend,
            MidpointCache(cache_bytes, cache_dir),
            chunk,
            network_backend,
            network_dtype,
            channels_last,
            progress,
            cuda_graphs,
        )

    def prepare(
        self, shape: tuple[int, int] = (256, 256), maps: int = 1, candidates: int | None = None
    ) -> float:
        """Build or load, ahead of requests, everything a request of ``maps`` maps on a grid of
        ``shape`` needs: the native ops and the compiled/exported networks. Returns the seconds
        spent. Requests call it themselves, before their clock starts, so build time never lands
        in ``timings_ms``; a service calls it at start-up so none lands in a request either."""
        K = _int_arg("candidates", self.defaults.get("candidates", 64) if candidates is None else candidates)
        H, W = (int(v) for v in shape)
        key = (H, W, int(maps), K)
        if key in self._ready:
            return 0.0
        t0 = time.perf_counter()
        for op in ("ddim_step", "critical_points", "elect"):  # builds the native extension once
            ops.backend.select(op, self.device, self.backend)
        if self.engine is not None:
            total = maps * K
            batches = {min(self.chunk, total), total % self.chunk} if total else set()
            self.engine.prepare(H, W, maps, tta=self.boost_params.tta, denoiser_batches=batches)
        self._ready.add(key)
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ public API
    def estimate(
        self,
        buildings,
        samples,
        candidates: int | None = None,
        steps: int | None = None,
        reuse: float | None = None,
        seed: int = 0,
        eta: float | None = None,
        boost: bool = True,
        elect: bool = True,
        return_candidates: bool = False,
        boost_candidate: bool | None = None,
        known_write: bool | None = None,
        mode: str | None = None,
        freq_mhz: float | None = None,
        transmitters=None,
    ) -> EstimateResult:
        """Estimate one map.

        ``mode`` (default: the checkpoint's ``pipeline.mode``): ``"physics"`` localises the
        transmitters, builds the calibrated propagation prior and kriges its residuals
        (``physics_map``); ``"diffusion"`` is the WiFi-Diffusion boost → generation → election
        path. ``freq_mhz`` (physics; default: the checkpoint's) is the carrier; ``transmitters``
        (physics; ``[T, 2]`` row, col, may lie outside the grid) skips localisation when the sites
        are known. ``boost_candidate`` (default: the checkpoint's setting) lets the boost map R̂
        join the election; ``False`` is the paper's election among diffusion candidates only.
        ``known_write`` (default: the checkpoint's setting) steers the DDIM steps through S′ (see
        the module notes)."""
        return self.estimate_batch(
            [(buildings, samples)],
            candidates=candidates,
            steps=steps,
            reuse=reuse,
            seed=seed,
            eta=eta,
            boost=boost,
            elect=elect,
            return_candidates=return_candidates,
            boost_candidate=boost_candidate,
            known_write=known_write,
            mode=mode,
            freq_mhz=freq_mhz,
            transmitters=transmitters,
        )[0]

    def estimate_batch(
        self,
        items,
        candidates: int | None = None,
        steps: int | None = None,
        reuse: float | None = None,
        seed: int = 0,
        eta: float | None = None,
        boost: bool = True,
        elect: bool = True,
        return_candidates: bool = False,
        boost_candidate: bool | None = None,
        known_write: bool | None = None,
        mode: str | None = None,
        freq_mhz: float | None = None,
        transmitters=None,
    ) -> list[EstimateResult]:
        """Many maps in one call; maps of the same grid size run as one batch (diffusion mode).
        ``transmitters`` applies to every map of the batch."""
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "physics" and self.physics is None:
            raise ValueError(
                "mode='physics' needs a checkpoint with a physics-calibration block; "
                "run `python -m wifidiff_fast.physics.calibrate --into CHECKPOINT_DIR`"
            )
        if mode == "diffusion" and transmitters is not None:
            raise ValueError("transmitters= is used by mode='physics' only")
        freq = None
        if mode == "physics":
            freq = self.physics.default_freq_mhz if freq_mhz is None else _real_arg("freq_mhz", freq_mhz)
            if not 100.0 <= freq <= 100_000.0:
                raise ValueError(f"freq_mhz must be a carrier in 100..100000 MHz, got {freq}")
        boost_candidate = self.boost_candidate if boost_candidate is None else bool(boost_candidate)
        known_write = self.known_write if known_write is None else bool(known_write)
        K, S, R, eta = self._check_sampler(candidates, steps, reuse, eta, seed)
        clean = []
        for i, item in enumerate(items):
            try:
                b, s = item
            except (TypeError, ValueError):
                raise TypeError(f"item {i} must be a (buildings, samples) pair") from None
            b = check_buildings(b)
            if min(b.shape) < MIN_SIZE:
                raise ValueError(
                    f"grid {b.shape[0]}x{b.shape[1]} is too small for the network: "
                    f"use at least {MIN_SIZE}x{MIN_SIZE} (upsample or pad the layout)"
                )
            clean.append((b, check_samples(s, b, rss_range=(self.p_min, self.p_max))))
        if not clean:
            raise ValueError("estimate_batch needs at least one (buildings, samples) pair")
        if mode == "physics":
            seed = _int_arg("seed", seed)
            return [self._run_physics(b, s, freq, seed, transmitters) for b, s in clean]
        results: list[EstimateResult | None] = [None] * len(clean)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, (b, _) in enumerate(clean):
            by_shape.setdefault(b.shape, []).append(i)
        for idx in by_shape.values():
            outs = self._run(
                [clean[i] for i in idx],
                K,
                S,
                R,
                eta,
                seed,
                boost,
                elect,
                return_candidates,
                boost_candidate,
                known_write,
            )
            for i, out in zip(idx, outs):
                results[i] = out
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals
    def _run_physics(self, b: np.ndarray, s: np.ndarray, freq_mhz: float, seed: int, transmitters):
        params, settings = self.physics.params, self.physics.settings
        t0 = time.perf_counter()
        learned = None
        if self.physics_learned_fallback and transmitters is None:
            # the boost network's map competes as the explanation for set-ups the prior does not fit
            boost_only = self._run(
                [(b, s)],
                K=0,
                S_steps=1,
                R=0.0,
                eta=0.0,
                seed=seed,
                use_boost=True,
                use_elect=False,
                return_candidates=False,
                boost_candidate=False,
                known_write=False,
            )
            learned = boost_only[0].R_hat_dbm
        t_boost = (time.perf_counter() - t0) * 1e3
        pm = physics_map(b, s, params, freq_mhz, settings, seed, transmitters, learned)
        rss = pm.rss_dbm.astype(np.float64)
        rows, cols = s[:, 0].astype(np.int64), s[:, 1].astype(np.int64)
        rss[rows, cols] = s[:, 2]  # real measurements always win
        rss[b == 1] = np.nan
        loc = pm.localisation
        return EstimateResult(
            rss_dbm=rss.astype(np.float32),
            uncertainty_db=pm.sigma_db,
            scores=np.zeros(0, np.float32),
            elected=-1,
            critical_points=np.zeros((0, 2), np.int64),
            R_hat_dbm=pm.prior_dbm,
            alpha=float("nan"),
            timings_ms={
                "boost": round(t_boost, 3),
                **pm.timings_ms,
                "total": round((time.perf_counter() - t0) * 1e3, 3),
            },
            mode="physics",
            transmitters=loc.as_array(),
            n_sites=loc.n_sites,
        )

    def _check_sampler(self, candidates, steps, reuse, eta, seed):
        K = _int_arg("candidates", self.defaults.get("candidates", 64) if candidates is None else candidates)
        S = _int_arg("steps", self.defaults.get("steps", 10) if steps is None else steps)
        R = _real_arg("reuse", self.defaults.get("reuse", 0.0) if reuse is None else reuse)
        eta = _real_arg("eta", self.defaults.get("eta", 0.0) if eta is None else eta)
        seed = _int_arg("seed", seed)
        if not 0 <= K <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be in 0..{MAX_CANDIDATES} (0 = the boost map alone), got {K}")
        if not 1 <= S <= min(MAX_STEPS, self.scheduler.num_train_timesteps):
            raise ValueError(f"steps must be in 1..{self.scheduler.num_train_timesteps}, got {S}")
        if not 0.0 <= R < 1.0:
            raise ValueError(f"reuse must be in [0, 1), got {R} (R = 0 disables midpoint reuse)")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        if not 0 <= seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {seed}")
        return K, S, R, eta

    @property
    def network_backend(self) -> str:
        return self.engine.backend if self.engine is not None else "eager"

    @torch.inference_mode()
    def _run(
        self,
        maps,
        K,
        S_steps,
        R,
        eta,
        seed,
        use_boost,
        use_elect,
        return_candidates,
        boost_candidate,
        known_write,
    ):
        dev, n = self.device, len(maps)
        H, W = maps[0][0].shape
        self.prepare((H, W), n, K)  # builds and loads outside the request's clock
        timer = StageTimer(dev, self.network_backend)
        rasters = [rasterise(s, (H, W), self.p_min, self.p_max) for _, s in maps]
        B = torch.stack([torch.from_numpy(b).float() for b, _ in maps]).to(dev)
        S = torch.stack([r[0] for r in rasters]).to(dev)
        M = torch.stack([r[1] for r in rasters]).to(dev)

        if self.graphs is not None and K > 0 and use_boost and use_elect:
            return self._run_graph(
                maps,
                B,
                S,
                M,
                K,
                S_steps,
                R,
                eta,
                seed,
                boost_candidate,
                known_write,
                return_candidates,
                timer,
            )
        # --- boost block -------------------------------------------------------------
        if use_boost:
            with timer.stage("boost"):
                R_hat = rough_map(self.runners.boost, B, S, M, tta=self.boost_params.tta)
            with timer.stage("critical_points"):
                S_prime, M_prime, crit = self._condition(R_hat, B, S, M, random_points_per_map(seed))
        else:
            R_hat, S_prime, M_prime = torch.zeros_like(S), S, M
            crit = torch.full((n, 0, 2), -1, dtype=torch.long, device=dev)

        if K == 0:
            # Fast path: the boost map alone (no candidates, no election).
            if not use_boost:
                raise ValueError("candidates=0 returns the boost map, so it needs boost=True")
            chosen = R_hat
            cand = R_hat[:, None]
            scores = torch.zeros(n, 0, device=dev)
            elected = torch.full((n,), -1, dtype=torch.long, device=dev)
            spread = torch.full_like(R_hat, float("nan"))
            alpha = torch.full((n,), float("nan"), device=dev)
        else:
            # --- generation block (with midpoint reuse) ------------------------------
            with (
                timer.stage("generation"),
                progress(S_steps, f"generation ({n}x{K} candidates)", self.progress, unit="step") as bar,
            ):
                token = _step_callback.set(lambda *_: bar.update())
                try:
                    cand = self._generate(
                        B,
                        S_prime,
                        M_prime,
                        R_hat,
                        [b for b, _ in maps],
                        K,
                        S_steps,
                        R,
                        eta,
                        seed,
                        1.0 if use_boost else 0.0,
                        known_write,
                    )
                finally:
                    _step_callback.reset(token)
            # --- election block -------------------------------------------------------
            with timer.stage("election"):
                chosen, cand, scores, elected, spread, alpha = self._elect(
                    cand, R_hat, B, S, M, use_boost, boost_candidate, use_elect
                )
        return self._results(
            maps, chosen, cand, scores, elected, spread, alpha, R_hat, crit, timer.result(), return_candidates
        )

    def _run_graph(
        self, maps, B, S, M, K, steps, R, eta, seed, boost_candidate, known_write, return_candidates, timer
    ):
        """The request as one CUDA-graph replay per shape bucket (stage 1 of midpoint reuse, once
        per layout, runs eagerly and is cached; the graph starts at its midpoint)."""
        from ..runtime.graphs import BucketKey

        n, H, W = B.shape
        m = reuse_steps(R, steps)
        key = BucketKey(
            n,
            H,
            W,
            K,
            steps,
            self.network_backend,
            start=m,
            eta=float(eta),
            known_write=known_write,
            boost_candidate=boost_candidate,
        )
        x, noise_fn = self._start(n, K, H, W, steps, eta, seed)
        inputs = {
            "B": B,
            "S": S,
            "M": M,
            "random_points": random_points_per_map(seed)(B, self.boost_params.n_random).to(self.device),
        }
        if noise_fn is not None:
            inputs["noise"] = torch.stack([noise_fn(i) for i in range(m, steps)])
        self._table(steps, eta)
        with timer.stage("graph"):
            if m > 0:
                x = self._midpoints(x, B, [b for b, _ in maps], K, steps, m, eta, seed, noise_fn)
            out = self.graphs.run(key, x=x, **inputs)
        return self._results(
            maps,
            out["chosen"],
            out["cand"],
            out["scores"],
            out["elected"],
            out["spread"],
            out["alpha"],
            out["R_hat"],
            out["crit"],
            timer.result(),
            return_candidates,
        )

    def _condition(self, R_hat, B, S, M, random_points):
        """Critical + random points of R̂ merged with the samples: ``S′, M′`` and the critical points."""
        cond = boost_condition(
            R_hat,
            B,
            S,
            M,
            self.boost_params,
            random_points,
            critical_points=partial(ops.critical_points, backend=self.backend),
            merge_condition=partial(ops.merge_condition, backend=self.backend),
        )
        return cond.S_prime, cond.M_prime, cond.points[:, : self.boost_params.n_critical]

    def _elect(self, cand, R_hat, B, S, M, use_boost, boost_candidate, use_elect):
        """The election block on ``[n, K, H, W]`` candidates (no host synchronisation)."""
        n, K, H, W = cand.shape
        if use_boost:
            feats = correction_inputs(R_hat, S, M, B, self.p_max - self.p_min)
            alpha = torch.exp(self.runners.correction(feats)).float()
            if boost_candidate:
                cand = torch.cat([cand, R_hat[:, None].to(cand.dtype)], dim=1)
        else:
            alpha = torch.zeros(n, device=cand.device)  # no R̂ to correct towards
        scores, elected, spread = ops.elect(
            cand, R_hat, S, M, B, alpha, self.election_params, backend=self.backend
        )
        if use_boost and boost_candidate:
            # the uncertainty is the spread of the K diffusion candidates, not of R̂ vs them
            db = self.election_params.db_span / 2
            spread = cand[:, :K].float().std(dim=1, unbiased=False) * db * (B == 0)
        if not use_elect:
            elected = torch.zeros_like(elected)  # ablation: the first candidate, no election
        chosen = cand.gather(1, elected.view(n, 1, 1, 1).expand(n, 1, H, W))[:, 0]
        return chosen, cand, scores, elected, spread, alpha

    def _results(
        self, maps, chosen, cand, scores, elected, spread, alpha, R_hat, crit, timings, return_candidates
    ):
        out = []
        for b_idx, (b, s) in enumerate(maps):
            rss = model_to_dbm(chosen[b_idx].float().cpu().numpy().astype(np.float64), self.p_min, self.p_max)
            rows, cols = s[:, 0].astype(np.int64), s[:, 1].astype(np.int64)
            rss[rows, cols] = s[:, 2]  # real measurements always win
            rss[b == 1] = np.nan
            unc = spread[b_idx].float().cpu().numpy().astype(np.float32)
            unc[b == 1] = np.nan
            r_hat = model_to_dbm(R_hat[b_idx].float().cpu().numpy(), self.p_min, self.p_max).astype(
                np.float32
            )
            r_hat[b == 1] = np.nan
            cp = crit[b_idx].cpu().numpy()
            cands = None
            if return_candidates:
                cands = model_to_dbm(cand[b_idx].float().cpu().numpy(), self.p_min, self.p_max).astype(
                    np.float32
                )
                cands[:, b == 1] = np.nan
            out.append(
                EstimateResult(
                    rss_dbm=rss.astype(np.float32),
                    uncertainty_db=unc,
                    scores=scores[b_idx].float().cpu().numpy(),
                    elected=int(elected[b_idx]),
                    critical_points=cp[cp[:, 0] >= 0],
                    R_hat_dbm=r_hat,
                    alpha=float(alpha[b_idx]),
                    timings_ms={k: round(v, 3) for k, v in timings.items()},
                    candidates_dbm=cands,
                )
            )
        return out

    def _start(self, n, K, H, W, steps, eta, seed):
        """x_T ``[n·K, H, W]`` (seeded per map) and the η-noise function of step i (or None)."""
        dev = self.device
        x = torch.cat([initial_noise(K, (H, W), seed, dev)[0] for _ in range(n)])
        noise_fn = None
        if eta > 0:

            def noise_fn(i: int) -> torch.Tensor:
                g = torch.Generator().manual_seed(_stream_seed(seed, 1 + i))
                z = torch.randn((K, H, W), generator=g)
                return z.repeat(n, 1, 1).to(dev)

        return x, noise_fn

    def _step_fn(self, S_prime, M_prime, steps, write):
        def step_fn(x_t, eps, tbl, i, noise=None, clip_sample=True, clip_range=1.0):
            # the known raster [n, H, W] is shared by each map's K candidates (no repeat needed)
            known = dict(known=S_prime, known_mask=M_prime) if write and i < steps - 1 else {}
            return ops.ddim_step(
                x_t,
                eps,
                tbl,
                i,
                noise=noise,
                clip_sample=clip_sample,
                clip_range=clip_range,
                backend=self.backend,
                **known,
            )

        return step_fn

    def _generate(
        self, B, S_prime, M_prime, R_hat, layouts, K, steps, R, eta, seed, has_boost, known_write=False
    ):
        """``[n, K, H, W]`` candidates (model space) for n maps."""
        n, H, W = B.shape
        x, noise_fn = self._start(n, K, H, W, steps, eta, seed)
        m = reuse_steps(R, steps)
        if m > 0:
            x = self._midpoints(x, B, layouts, K, steps, m, eta, seed, noise_fn)
        return self._denoise(
            x, B, S_prime, M_prime, R_hat, K, steps, m, eta, has_boost, known_write, noise_fn
        )

    def _midpoints(self, x, B, layouts, K, steps, m, eta, seed, noise_fn):
        """Stage 1 of midpoint reuse: static-only condition; K midpoints per layout, cached as
        fp16. Both hit and miss continue from the fp16 value, so results do not depend on the
        cache state. Returns ``[n·K, H, W]``."""
        dev = self.device
        n, H, W = B.shape
        table, timesteps = ddim_table(self.scheduler, steps, eta, device=dev)
        clip = dict(clip_sample=self.scheduler.clip_sample, clip_range=self.scheduler.clip_sample_range)
        sampler = {"K": K, "steps": steps, "eta": eta, **self.scheduler.to_dict()}
        keys = [midpoint_key(b, self.model_id, sampler, seed, m) for b in layouts]
        mids = [self.cache.get(k) for k in keys]
        missing = [i for i, v in enumerate(mids) if v is None]
        if missing:
            sel = torch.tensor(missing, device=dev)
            xs = x.view(n, K, H, W)[sel].reshape(-1, H, W)
            Bs = B[sel].repeat_interleave(K, 0)
            zeros = torch.zeros_like(Bs)
            eps_fn = make_eps_fn(
                self.runners.denoiser,
                table,
                timesteps,
                Bs,
                zeros,
                zeros,
                zeros,
                0.0,
                0.0,
                self.scheduler.prediction_type,
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
                step_fn=self._step_fn(None, None, steps, False),
                noise_fn=sub_noise,
                callback=_step_callback.get(),
                **clip,
            )
            for j, i in enumerate(missing):
                mids[i] = self.cache.put(keys[i], mid.view(len(missing), K, H, W)[j])
        return torch.cat([v.to(dev, torch.float32) for v in mids])

    def _table(self, steps: int, eta: float):
        """The DDIM table on the device, built once per (steps, η): a CUDA-graph capture must not
        copy from the host."""
        key = (int(steps), float(eta))
        found = self._tables.get(key)
        if found is None:
            found = self._tables[key] = ddim_table(self.scheduler, steps, eta, device=self.device)
        return found

    def _denoise(self, x, B, S_prime, M_prime, R_hat, K, steps, start, eta, has_boost, known_write, noise_fn):
        """DDIM steps ``start .. S-1`` under the full condition from ``x [n·K, H, W]`` →
        ``[n, K, H, W]`` (graph-capturable: no host synchronisation)."""
        n, H, W = B.shape
        table, timesteps = self._table(steps, eta)
        rep = lambda z: z.repeat_interleave(K, 0)  # noqa: E731  [n,H,W] -> [n·K,H,W]
        clip = dict(clip_sample=self.scheduler.clip_sample, clip_range=self.scheduler.clip_sample_range)
        eps_fn = make_eps_fn(
            self.runners.denoiser,
            table,
            timesteps,
            rep(B),
            rep(S_prime),
            rep(M_prime),
            rep(R_hat),
            1.0,
            has_boost,
            self.scheduler.prediction_type,
            self.chunk,
            group=K,
        )
        x, _ = ddim_sample(
            eps_fn,
            x,
            table,
            start,
            steps,
            step_fn=self._step_fn(S_prime, M_prime, steps, known_write),
            noise_fn=noise_fn,
            callback=_step_callback.get(),
            **clip,
        )
        return x.clamp(-1, 1).view(n, K, H, W)
