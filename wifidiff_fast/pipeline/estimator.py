"""The Estimator: boost → generation → election in one call.

It orchestrates — validates the inputs, batches maps by grid size, times the stages and turns the
tensors into :class:`EstimateResult` — while the blocks live in :mod:`.boost`, :mod:`.generate`
(:class:`~.generate.CandidateGenerator`: seeded noise, midpoint reuse, DDIM) and
:mod:`.election`. The checkpoint's inference settings are read once, as a
:class:`~.params.PipelineConfig`.

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

import dataclasses
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
from ..models.features import Condition
from ..ops.backend import BACKENDS as OP_BACKENDS
from ..physics.prior import COMPATIBLE_VERSIONS, PropagationParams
from ..runtime.engine import NetworkEngine
from ..runtime.progress import progress
from ..runtime.timing import StageTimer
from . import election
from .boost import boost_condition, random_points_per_map, rough_map
from .cache import MidpointCache
from .generate import CandidateGenerator
from .params import MODES, PipelineConfig, SamplerSettings, int_arg, real_arg
from .physics_map import PhysicsSettings, heldout_at_samples, physics_map

CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
MIN_SIZE = 32
BACKENDS = ("auto", *OP_BACKENDS)


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


def _device_arg(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")
    return dev


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
        settings = self.pipeline_config = PipelineConfig.from_dict(config)
        self.p_min, self.p_max = settings.p_min_dbm, settings.p_max_dbm
        self.scheduler = settings.scheduler
        self.sampler_defaults = settings.sampler_defaults
        self.boost_params = settings.boost
        # The boost map R̂ joins the election as one more candidate (index K): see the module notes.
        self.boost_candidate = settings.boost_candidate
        self.known_write = settings.known_sample_write
        self.election_params = settings.election  # its dB span is the normalisation range
        self.model_id = config["weights"]["sha256"]
        self.mode = settings.mode
        self.physics = physics_block(config)
        self.physics_learned_fallback = settings.physics_learned_fallback
        if self.mode == "physics" and self.physics is None:
            raise ValueError(
                "the checkpoint's pipeline.mode is 'physics' but it has no physics-calibration "
                "block; run `python -m wifidiff_fast.physics.calibrate --into CHECKPOINT_DIR`"
            )
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
        # CPU: small chunks keep the memory of a 64-candidate batch bounded; GPU: one batch.
        # Compiled networks on the CPU: one call per map's K candidates measured fastest (fewer,
        # larger oneDNN calls; engine_cpu.md) — the eager reference keeps 16.
        default_chunk = 16 if self.device.type == "cpu" else 256
        if self.engine is not None and chunk is None and self.device.type == "cpu":
            default_chunk = 64
        self.generator = CandidateGenerator(
            self.runners,
            self.scheduler,
            self.model_id,
            cache if cache is not None else MidpointCache(),
            self.device,
            chunk or default_chunk,
            self.backend,
        )
        # CUDA graphs: the whole diffusion request captured per shape bucket (runtime.graphs)
        self.graphs = None
        if cuda_graphs:
            if self.device.type != "cuda":
                raise ValueError("cuda_graphs=True needs device='cuda'")
            from ..runtime.graphs import GraphCache, request_function

            self.graphs = GraphCache(lambda key: request_function(self, key), self.device)
        self._ready: set = set()

    @property
    def cache(self) -> MidpointCache:
        """The midpoint cache (the generator's; assignable)."""
        return self.generator.cache

    @cache.setter
    def cache(self, value: MidpointCache) -> None:
        self.generator.cache = value

    @property
    def chunk(self) -> int:
        """Maps per denoiser call (the generator's)."""
        return self.generator.chunk

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
        self,
        shape: tuple[int, int] = (256, 256),
        maps: int = 1,
        candidates: int | None = None,
        tta: bool | None = None,
    ) -> float:
        """Build or load, ahead of requests, everything a request of ``maps`` maps on a grid of
        ``shape`` needs: the native ops and the compiled/exported networks. Returns the seconds
        spent. Requests call it themselves, before their clock starts, so build time never lands
        in ``timings_ms``; a service calls it at start-up so none lands in a request either.
        ``tta``: whether the boost map averages the grid's symmetries (default: the checkpoint's)."""
        K = self.sampler_defaults.candidates if candidates is None else int_arg("candidates", candidates)
        tta = self.boost_params.tta if tta is None else bool(tta)
        H, W = (int(v) for v in shape)
        key = (H, W, int(maps), K, tta)
        if key in self._ready:
            return 0.0
        t0 = time.perf_counter()
        for op in ("ddim_step", "critical_points", "elect"):  # builds the native extension once
            ops.backend.select(op, self.device, self.backend)
        if self.engine is not None:
            total = maps * K
            batches = {min(self.chunk, total), total % self.chunk} if total else set()
            self.engine.prepare(H, W, maps, tta=tta, denoiser_batches=batches)
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
        tta: bool | None = None,
        antenna: str | None = None,
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
        the module notes). ``tta`` (diffusion; default: the checkpoint's ``boost.tta``) averages
        the boost map over the grid's 8 symmetries; ``False`` with ``candidates=0`` is the fastest
        estimate there is, one network pass. ``antenna`` (physics; default: the checkpoint's,
        ``"sector"``) says what the transmitters are: ``"sector"`` masts as calibrated, or
        ``"omni"`` transmitters of unknown power such as WiFi access points."""
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
            tta=tta,
            antenna=antenna,
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
        tta: bool | None = None,
        antenna: str | None = None,
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
        if mode == "physics" and tta is not None:
            raise ValueError(
                "tta= is used by mode='diffusion' only (the physics mode keeps the checkpoint's)"
            )
        if mode == "diffusion" and antenna is not None:
            raise ValueError("antenna= is used by mode='physics' only")
        physics_settings = None
        if mode == "physics":  # PhysicsSettings checks the antenna, before any input is read
            physics_settings = self.physics.settings
            if antenna is not None:
                physics_settings = dataclasses.replace(physics_settings, antenna=antenna)
        tta = self.boost_params.tta if tta is None else bool(tta)
        freq = None
        if mode == "physics":
            freq = self.physics.default_freq_mhz if freq_mhz is None else real_arg("freq_mhz", freq_mhz)
            if not 100.0 <= freq <= 100_000.0:
                raise ValueError(f"freq_mhz must be a carrier in 100..100000 MHz, got {freq}")
        boost_candidate = self.boost_candidate if boost_candidate is None else bool(boost_candidate)
        known_write = self.known_write if known_write is None else bool(known_write)
        sampler = SamplerSettings.resolve(
            self.sampler_defaults, self.scheduler.num_train_timesteps, candidates, steps, reuse, eta, seed
        )
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
            return [
                self._run_physics(b, s, freq, sampler.seed, transmitters, physics_settings) for b, s in clean
            ]
        results: list[EstimateResult | None] = [None] * len(clean)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, (b, _) in enumerate(clean):
            by_shape.setdefault(b.shape, []).append(i)
        for idx in by_shape.values():
            outs = self._run(
                [clean[i] for i in idx],
                sampler,
                use_boost=boost,
                use_elect=elect,
                return_candidates=return_candidates,
                boost_candidate=boost_candidate,
                known_write=known_write,
                tta=tta,
            )
            for i, out in zip(idx, outs):
                results[i] = out
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals
    def learned_explanation(
        self, buildings: np.ndarray, samples: np.ndarray, seed: int = 0, folds: int | None = None
    ):
        """What the physics mode weighs the boost network's map by: the map R̂ (dBm ``[H, W]``,
        the checkpoint's boost) and each sample's held-out prediction (``[N]``, one single-pass map
        per fold of ``folds``, default the checkpoint's ``learned_heldout_folds``; None when 0).
        Validated inputs."""
        boost_only = self._run(
            [(buildings, samples)],
            SamplerSettings(candidates=0, steps=1, seed=seed),
            use_boost=True,
            use_elect=False,
            return_candidates=False,
            boost_candidate=False,
            known_write=False,
        )
        if folds is None:
            settings = self.physics.settings if self.physics is not None else PhysicsSettings()
            folds = settings.learned_heldout_folds
        heldout = None
        if folds:
            heldout = heldout_at_samples(
                lambda subsets: self._single_pass_maps(buildings, subsets), samples, folds, seed
            )
        return boost_only[0].R_hat_dbm, heldout

    def _rasters(self, maps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """B, S, M ``[n, H, W]`` on the device for ``(buildings, samples)`` pairs of one grid."""
        H, W = maps[0][0].shape
        rasters = [rasterise(s, (H, W), self.p_min, self.p_max) for _, s in maps]
        B = torch.stack([torch.from_numpy(b).float() for b, _ in maps]).to(self.device)
        S = torch.stack([r[0] for r in rasters]).to(self.device)
        M = torch.stack([r[1] for r in rasters]).to(self.device)
        return B, S, M

    @torch.inference_mode()
    def _single_pass_maps(self, b: np.ndarray, subsets: list[np.ndarray]) -> list[np.ndarray]:
        """The boost network's map (dBm ``[H, W]``) of ``b`` for each sample subset, one batch, one
        pass each (no symmetry averaging): the held-out predictions that score the learned map."""
        H, W = b.shape
        self.prepare((H, W), len(subsets), 0, tta=False)
        B, S, M = self._rasters([(b, x) for x in subsets])
        R_hat = rough_map(self.runners.boost, B, S, M, tta=False).float().cpu().numpy()
        return [model_to_dbm(r.astype(np.float64), self.p_min, self.p_max) for r in R_hat]

    def _run_physics(
        self,
        b: np.ndarray,
        s: np.ndarray,
        freq_mhz: float,
        seed: int,
        transmitters,
        settings: PhysicsSettings,
    ):
        params = self.physics.params
        use_learned = self.physics_learned_fallback and transmitters is None
        if use_learned:  # build or load the boost networks before the clock starts
            self.prepare(b.shape, 1, 0)
            if settings.learned_heldout_folds:  # the held-out folds' batch (heldout_at_samples)
                self.prepare(b.shape, max(2, min(settings.learned_heldout_folds, len(s))), 0, tta=False)
        t0 = time.perf_counter()
        learned = heldout = None
        if use_learned:
            # the boost network's map competes as the explanation for set-ups the prior does not fit
            learned, heldout = self.learned_explanation(b, s, seed)
        t_boost = (time.perf_counter() - t0) * 1e3
        pm = physics_map(
            b,
            s,
            params,
            freq_mhz,
            settings,
            seed=seed,
            transmitters=transmitters,
            learned_dbm=learned,
            learned_heldout=heldout,
        )
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

    @property
    def network_backend(self) -> str:
        return self.engine.backend if self.engine is not None else "eager"

    @torch.inference_mode()
    def _run(
        self,
        maps,
        sampler: SamplerSettings,
        *,
        use_boost: bool,
        use_elect: bool,
        return_candidates: bool,
        boost_candidate: bool,
        known_write: bool,
        tta: bool | None = None,
    ):
        dev, n, K = self.device, len(maps), sampler.candidates
        tta = self.boost_params.tta if tta is None else tta
        H, W = maps[0][0].shape
        self.prepare((H, W), n, K, tta=tta)  # builds and loads outside the request's clock
        timer = StageTimer(dev, self.network_backend)
        B, S, M = self._rasters(maps)

        # (a captured graph holds the checkpoint's boost: another tta runs outside it)
        if self.graphs is not None and K > 0 and use_boost and use_elect and tta == self.boost_params.tta:
            return self._run_graph(
                maps, B, S, M, sampler, boost_candidate, known_write, return_candidates, timer
            )
        # --- boost block -------------------------------------------------------------
        if use_boost:
            with timer.stage("boost"):
                R_hat = rough_map(self.runners.boost, B, S, M, tta=tta)
            with timer.stage("critical_points"):
                cond, crit = self._condition(R_hat, B, S, M, random_points_per_map(sampler.seed))
        else:
            cond = Condition(B, S, M, torch.zeros_like(S), has_boost=0.0)
            crit = torch.full((n, 0, 2), -1, dtype=torch.long, device=dev)

        if K == 0:
            # Fast path: the boost map alone (no candidates, no election).
            if not use_boost:
                raise ValueError("candidates=0 returns the boost map, so it needs boost=True")
            R_hat = cond.R_hat
            out = election.Elected(
                chosen=R_hat,
                cand=R_hat[:, None],
                scores=torch.zeros(n, 0, device=dev),
                elected=torch.full((n,), -1, dtype=torch.long, device=dev),
                spread=torch.full_like(R_hat, float("nan")),
                alpha=torch.full((n,), float("nan"), device=dev),
            )
        else:
            # --- generation block (with midpoint reuse) ------------------------------
            with (
                timer.stage("generation"),
                progress(
                    sampler.steps, f"generation ({n}x{K} candidates)", self.progress, unit="step"
                ) as bar,
            ):
                cand = self.generator.generate(
                    cond, [b for b, _ in maps], sampler, known_write, callback=lambda *_: bar.update()
                )
            # --- election block -------------------------------------------------------
            with timer.stage("election"):
                out = self._elect(cand, cond.R_hat, B, S, M, use_boost, boost_candidate, use_elect)
        return self._results(maps, out, cond.R_hat, crit, timer.result(), return_candidates)

    def _run_graph(self, maps, B, S, M, sampler, boost_candidate, known_write, return_candidates, timer):
        """The request as one CUDA-graph replay per shape bucket (stage 1 of midpoint reuse, once
        per layout, runs eagerly and is cached; the graph starts at its midpoint)."""
        from ..runtime.graphs import BucketKey

        n, H, W = B.shape
        steps, m = sampler.steps, sampler.stage1_steps
        key = BucketKey(
            n,
            H,
            W,
            sampler.candidates,
            steps,
            self.network_backend,
            start=m,
            eta=float(sampler.eta),
            known_write=known_write,
            boost_candidate=boost_candidate,
        )
        x, noise_fn = self.generator.start(n, H, W, sampler)
        inputs = {
            "B": B,
            "S": S,
            "M": M,
            "random_points": random_points_per_map(sampler.seed)(B, self.boost_params.n_random).to(
                self.device
            ),
        }
        if noise_fn is not None:
            inputs["noise"] = torch.stack([noise_fn(i) for i in range(m, steps)])
        self.generator.table(steps, sampler.eta)
        with timer.stage("graph"):
            if m > 0:
                x = self.generator.midpoints(x, B, [b for b, _ in maps], sampler, noise_fn)
            out = self.graphs.run(key, x=x, **inputs)
        elected = election.Elected(*(out[name] for name in election.Elected._fields))
        return self._results(maps, elected, out["R_hat"], out["crit"], timer.result(), return_candidates)

    def _condition(self, R_hat, B, S, M, random_points) -> tuple[Condition, torch.Tensor]:
        """Critical + random points of R̂ merged with the samples: the full condition (B, S′, M′,
        R̂) and the critical points ``int64 [n, n_critical, 2]``."""
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
        return Condition(B, cond.S_prime, cond.M_prime, R_hat), cond.points[:, : self.boost_params.n_critical]

    def _elect(self, cand, R_hat, B, S, M, use_boost=True, boost_candidate=True, use_elect=True):
        """The election block (:func:`.election.elect`) with this estimator's correction network,
        election parameters and op backend."""
        return election.elect(
            cand,
            R_hat,
            B,
            S,
            M,
            self.runners.correction,
            self.election_params,
            use_boost=use_boost,
            boost_candidate=boost_candidate,
            use_elect=use_elect,
            backend=self.backend,
        )

    def _results(self, maps, out: election.Elected, R_hat, crit, timings, return_candidates):
        chosen, cand, scores, elected, spread, alpha = out
        results = []
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
            results.append(
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
        return results
