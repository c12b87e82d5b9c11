"""Pipeline settings, each a small frozen dataclass checked on creation: the hyper-parameters the
papers leave blank, a request's sampler settings, and :class:`PipelineConfig` — the inference
sections of a checkpoint's ``config.json``, which training's export writes and the Estimator
reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..data.units import P_MAX_DBM, P_MIN_DBM
from ..models.checkpoint import CheckpointError
from ..reference.elect import ElectionParams
from ..sampling.schedules import SchedulerConfig

MAX_CANDIDATES = 1024
MAX_STEPS = 1000
MODES = ("physics", "diffusion")


def int_arg(name: str, value) -> int:
    """``value`` as an int; a ``TypeError`` naming the argument for bools, floats, strings, ..."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def real_arg(name: str, value) -> float:
    """``value`` as a finite float; ``TypeError`` for non-numbers, ``ValueError`` for NaN/inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


@dataclass(frozen=True)
class BoostParams:
    n_critical: int = 32  # capacity of the critical-point detector
    n_random: int = 32  # seeded random points added to S′ (paper §IV-A)
    sigma: float = 1.5  # Gaussian window of the structure tensor, px
    min_response: float = 1e-8
    # Average R̂ over the 8 symmetries of the grid (test-time augmentation; the AttUnet was trained
    # with them). Measured on BRAT region 2: NMSE −2 … −5 % at every N, for 8× the boost cost.
    tta: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SamplerSettings:
    """One request's sampler: ``candidates`` K per map (0 = the boost map alone), DDIM ``steps``
    S, midpoint ``reuse`` ratio R (0 = off), DDIM ``eta`` η and the ``seed`` of all noise.

    Checked on creation: ``TypeError`` for a wrong type, ``ValueError`` for a value out of range.
    """

    candidates: int
    steps: int
    reuse: float = 0.0
    eta: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("candidates", "steps"):
            object.__setattr__(self, name, int_arg(name, getattr(self, name)))
        for name in ("reuse", "eta"):
            object.__setattr__(self, name, real_arg(name, getattr(self, name)))
        object.__setattr__(self, "seed", int_arg("seed", self.seed))
        K, S, R = self.candidates, self.steps, self.reuse
        if not 0 <= K <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be in 0..{MAX_CANDIDATES} (0 = the boost map alone), got {K}")
        if not 1 <= S <= MAX_STEPS:
            raise ValueError(f"steps must be in 1..{MAX_STEPS}, got {S}")
        if not 0.0 <= R < 1.0:
            raise ValueError(f"reuse must be in [0, 1), got {R} (R = 0 disables midpoint reuse)")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {self.eta}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")

    @classmethod
    def resolve(
        cls,
        defaults: SamplerSettings,
        num_train_timesteps: int,
        candidates=None,
        steps=None,
        reuse=None,
        eta=None,
        seed=0,
    ) -> SamplerSettings:
        """The caller's settings, ``defaults`` (the checkpoint's ``sampler_defaults``) where they
        are None; at most ``num_train_timesteps`` steps (the scheduler's)."""

        def pick(name, value):
            return getattr(defaults, name) if value is None else value

        settings = cls(
            pick("candidates", candidates), pick("steps", steps), pick("reuse", reuse), pick("eta", eta), seed
        )
        if settings.steps > num_train_timesteps:
            raise ValueError(f"steps must be in 1..{num_train_timesteps}, got {settings.steps}")
        return settings

    @property
    def stage1_steps(self) -> int:
        """Steps under the static-only condition: ``m = round(R·S)`` (0 = no midpoint reuse)."""
        return int(round(self.reuse * self.steps))


SAMPLER_DEFAULTS = SamplerSettings(candidates=64, steps=10)
# the "pipeline" section of the config: its keys are PipelineConfig's field names
PIPELINE_KEYS = ("mode", "boost_candidate", "known_sample_write", "physics_learned_fallback")


def _section(config: dict, name: str, known) -> dict:
    """``config[name]`` (``{}`` when absent), refused with the known keys when it has others."""
    section = config.get(name, {})
    if not isinstance(section, dict):
        raise CheckpointError(f"config section '{name}' must be an object, got {type(section).__name__}")
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise CheckpointError(
            f"config section '{name}' has unknown key(s) {unknown}; this wifidiff_fast reads "
            f"{sorted(known)}. Fix the checkpoint's config.json or re-export it."
        )
    return section


def _keys(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class PipelineConfig:
    """The inference settings of a checkpoint (``config.json``), typed.

    Sections: ``normalisation`` (the dBm range of model space), ``scheduler``,
    ``sampler_defaults`` (a request's settings when it gives none), ``boost``, ``election`` and
    ``pipeline`` (mode and switches). The election's ``db_span`` always follows the
    normalisation range: a stale copy would mis-scale τ, the Friis drops and the uncertainty map.
    The physics-calibration block (``physics``, see ``estimator.physics_block``), the networks and
    the weights record are not part of it; :meth:`from_dict` ignores them and every other
    top-level key.
    """

    p_min_dbm: float = P_MIN_DBM
    p_max_dbm: float = P_MAX_DBM
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    sampler_defaults: SamplerSettings = SAMPLER_DEFAULTS  # its seed is not stored
    boost: BoostParams = field(default_factory=BoostParams)
    election: ElectionParams = field(default_factory=ElectionParams)
    mode: str = "diffusion"  # "physics" needs the physics-calibration block
    boost_candidate: bool = True  # R̂ joins the election as candidate K
    known_sample_write: bool = False  # stage-2 steps write S′ into x̂0
    physics_learned_fallback: bool = True  # physics mode: the boost map competes as an explanation

    def __post_init__(self):
        _check_normalisation(self.p_min_dbm, self.p_max_dbm)
        if self.mode not in MODES:
            raise ValueError(f"checkpoint pipeline.mode must be one of {MODES}, got {self.mode!r}")
        span = self.p_max_dbm - self.p_min_dbm
        if self.election.db_span != span:
            object.__setattr__(self, "election", _with_span(self.election, span))

    @classmethod
    def from_dict(cls, config: dict) -> PipelineConfig:
        """Read the sections of a checkpoint config; a :class:`CheckpointError` names an unknown
        key, a ``TypeError``/``ValueError`` a bad value. Absent sections take the defaults
        (``normalisation`` and ``scheduler`` are required by ``models.checkpoint.read_config``)."""
        norm = _section(config, "normalisation", ("p_min_dbm", "p_max_dbm"))
        p_min, p_max = float(norm.get("p_min_dbm", P_MIN_DBM)), float(norm.get("p_max_dbm", P_MAX_DBM))
        _check_normalisation(p_min, p_max)  # before the election's span is derived from it
        sampler = _section(config, "sampler_defaults", ("candidates", "steps", "reuse", "eta"))
        pipeline = _section(config, "pipeline", PIPELINE_KEYS)
        election = _section(config, "election", _keys(ElectionParams))
        return cls(
            p_min_dbm=p_min,
            p_max_dbm=p_max,
            scheduler=SchedulerConfig(**_section(config, "scheduler", _keys(SchedulerConfig))),
            sampler_defaults=SamplerSettings(**{**_sampler_dict(SAMPLER_DEFAULTS), **sampler}),
            boost=BoostParams(**_section(config, "boost", _keys(BoostParams))),
            election=ElectionParams(**{**election, "db_span": p_max - p_min}),
            mode=pipeline.get("mode", "diffusion"),
            boost_candidate=bool(pipeline.get("boost_candidate", True)),
            known_sample_write=bool(pipeline.get("known_sample_write", False)),
            physics_learned_fallback=bool(pipeline.get("physics_learned_fallback", True)),
        )

    def to_dict(self) -> dict:
        """The sections as ``config.json`` stores them (:meth:`from_dict` reads them back)."""
        return {
            "normalisation": {"p_min_dbm": self.p_min_dbm, "p_max_dbm": self.p_max_dbm},
            "scheduler": self.scheduler.to_dict(),
            "sampler_defaults": _sampler_dict(self.sampler_defaults),
            "boost": self.boost.to_dict(),
            "election": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.election).items()},
            "pipeline": {key: getattr(self, key) for key in PIPELINE_KEYS},
        }


def _check_normalisation(p_min: float, p_max: float) -> None:
    if not p_max > p_min:
        raise CheckpointError(f"normalisation needs p_max_dbm > p_min_dbm, got {p_min}, {p_max}")


def _sampler_dict(s: SamplerSettings) -> dict:
    return {"candidates": s.candidates, "steps": s.steps, "eta": s.eta, "reuse": s.reuse}


def _with_span(params: ElectionParams, span: float) -> ElectionParams:
    return ElectionParams(**{**asdict(params), "db_span": span})
