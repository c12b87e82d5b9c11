"""The methods an evaluation compares: the registry, the estimator methods and their ablations.

A *method* is any callable ``(buildings, samples) -> rss_dbm float32 [H, W]`` (NaN allowed on
buildings only). A method that needs the ground truth (the oracle) is registered with
``wants_target=True`` and is then called as ``fn(buildings, samples, target=rss_dbm)``; one
registered with ``wants_freq=True`` also gets ``freq_mhz=`` (the scene's carrier, None when unknown).

* Baselines: ``idw``, ``rbf``, ``kriging`` (:mod:`wifidiff_fast.eval.baselines`).
* Estimator methods, built lazily (the estimator is imported only when one is asked for, and
  constructed once per process per ``(checkpoint, device)``):
  ``wifidiff`` (boost + election), ``wifidiff-noboost``, ``wifidiff-noelect``,
  ``wifidiff-neither``, ``wifidiff-paper`` (election among diffusion candidates only),
  ``boost-only`` (the boost block's rough map ``R_hat_dbm``, ``candidates=0``, with the
  checkpoint's symmetry averaging), ``boost-one-pass`` (the same after one network pass,
  ``tta=False``), ``physics`` (the transmitter-aware path, ``mode="physics"``, given the
  scene's carrier), ``physics-omni`` (the same told the transmitters are omni, ``antenna="omni"``) and
  ``wifidiff-oracle`` (all K candidates, keeps the one with the lowest true MSE on the [0, 1]
  scale — an upper bound on what any election could reach; it sees the ground truth).
* Reuse: ``NAME@R=0.3`` runs an estimator method with midpoint-reuse ratio 0.3. A list of ratios
  given to :func:`resolve_methods` expands every estimator method (not the boost maps) into one
  method per value; R = 0 keeps the plain name.
* :func:`register_method` adds a callable (or a factory) under a new name — tests use it with
  fake methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..data.units import dbm_to_unit
from .baselines import BASELINES

__all__ = [
    "Method",
    "EstimatorOptions",
    "register_method",
    "unregister_method",
    "method_names",
    "resolve_methods",
    "parse_method_name",
]


@dataclass
class Method:
    """A named estimator ``fn(buildings, samples[, target=...]) -> rss_dbm``."""

    name: str
    fn: Callable
    wants_target: bool = False
    wants_freq: bool = False  # called with freq_mhz= (the scene's carrier, None when unknown)

    def __call__(
        self,
        buildings: np.ndarray,
        samples: np.ndarray,
        target: np.ndarray | None = None,
        freq_mhz: float | None = None,
    ) -> Any:  # an array or a tensor, [H, W] dBm
        kw = {}
        if self.wants_target:
            kw["target"] = target
        if self.wants_freq:
            kw["freq_mhz"] = freq_mhz
        return self.fn(buildings, samples, **kw)


@dataclass
class EstimatorOptions:
    """Options passed through to ``RadioMapEstimator`` (from_pretrained and estimate)."""

    checkpoint: str = "small"
    candidates: int = 64
    steps: int = 10
    reuse: float = 0.0
    device: str = "cpu"
    seed: int = 0
    known_write: bool | None = None  # None: the checkpoint's setting


# name -> factory(options) -> Method
_FACTORIES: dict[str, Callable[[EstimatorOptions], Method]] = {}
# names whose factory accepts a reuse ratio (estimator methods other than boost-only)
_REUSABLE: set[str] = set()
_ESTIMATORS: dict[tuple[str, str], object] = {}


def register_method(
    name: str,
    fn: Callable | None = None,
    *,
    factory: Callable | None = None,
    wants_target: bool = False,
    reusable: bool = False,
) -> None:
    """Register ``fn`` (a ready callable) or ``factory(options) -> Method | callable`` as ``name``."""
    if (fn is None) == (factory is None):
        raise ValueError("register_method needs exactly one of fn= or factory=")
    if not name or "," in name or "@" in name:
        raise ValueError(f"method name {name!r} must be non-empty and contain no ',' or '@'")
    if fn is not None:
        method = Method(name, fn, wants_target)
        _FACTORIES[name] = lambda options: method
    else:

        def build(options, _factory=factory):
            made = _factory(options)
            return made if isinstance(made, Method) else Method(name, made, wants_target)

        _FACTORIES[name] = build
    if reusable:
        _REUSABLE.add(name)
    else:
        _REUSABLE.discard(name)


def unregister_method(name: str) -> None:
    _FACTORIES.pop(name, None)
    _REUSABLE.discard(name)


def method_names() -> list[str]:
    return list(_FACTORIES)


def is_registered(name: str) -> bool:
    """Whether ``name`` (without an ``@R=`` suffix) is a registered method."""
    return name in _FACTORIES


def _estimator(options: EstimatorOptions) -> Any:
    key = (options.checkpoint, options.device)
    if key not in _ESTIMATORS:
        import importlib

        try:
            module = importlib.import_module("wifidiff_fast.pipeline.estimator")
        except ImportError as exc:
            raise ImportError(
                f"the estimator (wifidiff_fast.pipeline.estimator) is not available: {exc}"
            ) from None
        # the runner's bar counts maps; a per-request bar under it would be noise (and ignore --quiet)
        _ESTIMATORS[key] = module.RadioMapEstimator.from_pretrained(
            options.checkpoint, device=options.device, progress=False
        )
    return _ESTIMATORS[key]


def _unit_mse_per_candidate(cands: np.ndarray, target: np.ndarray, open_mask: np.ndarray) -> np.ndarray:
    y = dbm_to_unit(target[open_mask])
    yk = dbm_to_unit(np.asarray(cands, dtype=np.float64)[:, open_mask])
    err = np.mean((yk - y[None]) ** 2, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def _estimator_factory(
    name: str, boost: bool, elect: bool, mode: str = "final", boost_candidate: bool | None = None
) -> Callable[[EstimatorOptions], Method]:
    def factory(options: EstimatorOptions) -> Method:
        est = _estimator(options)

        if mode in ("boost", "boost-one-pass"):
            tta = False if mode == "boost-one-pass" else None  # None: the checkpoint's setting

            def fn(buildings, samples):
                res = est.estimate(
                    buildings, samples, candidates=0, seed=options.seed, mode="diffusion", tta=tta
                )
                return res.R_hat_dbm

            return Method(name, fn)

        if mode in ("physics", "physics-omni"):
            antenna = "omni" if mode == "physics-omni" else None  # None: the checkpoint's setting

            def fn(buildings, samples, freq_mhz=None):
                return est.estimate(
                    buildings, samples, mode="physics", freq_mhz=freq_mhz, seed=options.seed, antenna=antenna
                ).rss_dbm

            return Method(name, fn, wants_freq=True)

        common = dict(
            mode="diffusion",
            candidates=options.candidates,
            steps=options.steps,
            reuse=options.reuse,
            seed=options.seed,
            boost=boost,
            elect=elect,
            boost_candidate=boost_candidate,
            known_write=options.known_write,
        )
        if mode == "oracle":

            def fn(buildings, samples, target):
                res = est.estimate(buildings, samples, return_candidates=True, **common)
                target = np.asarray(target, dtype=np.float64)
                open_mask = (np.asarray(buildings) == 0) & np.isfinite(target)
                err = _unit_mse_per_candidate(res.candidates_dbm, target, open_mask)
                return np.asarray(res.candidates_dbm[int(np.argmin(err))], dtype=np.float32)

            return Method(name, fn, wants_target=True)

        def fn(buildings, samples):
            return est.estimate(buildings, samples, return_candidates=False, **common).rss_dbm

        return Method(name, fn)

    return factory


for _name, _fn in BASELINES.items():
    register_method(_name, _fn)
register_method("wifidiff", factory=_estimator_factory("wifidiff", True, True), reusable=True)
# The paper's election among the diffusion candidates only (the boost map does not compete).
register_method(
    "wifidiff-paper",
    factory=_estimator_factory("wifidiff-paper", True, True, boost_candidate=False),
    reusable=True,
)
register_method(
    "wifidiff-noboost", factory=_estimator_factory("wifidiff-noboost", False, True), reusable=True
)
register_method(
    "wifidiff-noelect", factory=_estimator_factory("wifidiff-noelect", True, False), reusable=True
)
register_method(
    "wifidiff-neither", factory=_estimator_factory("wifidiff-neither", False, False), reusable=True
)
register_method("boost-only", factory=_estimator_factory("boost-only", True, False, mode="boost"))
register_method(
    "boost-one-pass", factory=_estimator_factory("boost-one-pass", True, False, mode="boost-one-pass")
)
# The transmitter-aware path (localise → calibrated propagation prior → residual kriging), the
# shipped default of estimate(); the scene's carrier is passed when the data set knows it.
register_method("physics", factory=_estimator_factory("physics", True, False, mode="physics"))
# The same, told that the transmitters are omnidirectional of unknown power (estimate(...,
# antenna="omni")): what a user who knows the set-up, e.g. one WiFi access point, would ask for.
register_method("physics-omni", factory=_estimator_factory("physics-omni", True, False, mode="physics-omni"))
# The oracle picks, among the same diffusion candidates as wifidiff-paper, the one with the lowest
# true error: the gap to wifidiff-paper is what the election loses.
register_method(
    "wifidiff-oracle",
    factory=_estimator_factory("wifidiff-oracle", True, True, mode="oracle", boost_candidate=False),
    wants_target=True,
    reusable=True,
)


def _fmt_reuse(r: float) -> str:
    return f"{r:g}"


def parse_method_name(spec: str) -> tuple[str, float | None]:
    if "@" not in spec:
        return spec, None
    base, _, tail = spec.partition("@")
    if not tail.startswith("R="):
        raise ValueError(f"method {spec!r}: the only suffix understood is '@R=<reuse ratio>'")
    try:
        r = float(tail[2:])
    except ValueError:
        raise ValueError(f"method {spec!r}: reuse ratio {tail[2:]!r} is not a number") from None
    return base, r


def _check_reuse(r: float, where: str) -> float:
    if not (math.isfinite(r) and 0.0 <= r < 1.0):
        raise ValueError(f"{where}: reuse ratio must be in [0, 1), got {r:g}")
    return r


def resolve_methods(
    names: list[str], options: EstimatorOptions | None = None, reuse: list[float] | None = None
) -> list[Method]:
    """Build the methods for ``names`` (each ``NAME`` or ``NAME@R=r``).

    ``reuse``: a list of ratios; every reusable method named without ``@R=`` expands into one
    method per ratio (``NAME`` for 0, ``NAME@R=r`` otherwise). ``None`` means ``[options.reuse]``.
    Raises ``ValueError`` for unknown names or bad ratios and ``ImportError`` when an estimator
    method is asked for but the estimator cannot be imported.
    """
    options = options or EstimatorOptions()
    ratios = [options.reuse] if reuse is None else list(reuse)
    if not ratios:
        raise ValueError("reuse: give at least one ratio")
    for r in ratios:
        _check_reuse(r, "reuse")
    if not names:
        raise ValueError("no method given")
    out: list[Method] = []
    seen: set[str] = set()
    for spec in names:
        base, fixed = parse_method_name(spec.strip())
        if base not in _FACTORIES:
            raise ValueError(f"unknown method {base!r}; choose from {', '.join(_FACTORIES)}")
        if fixed is not None and base not in _REUSABLE:
            raise ValueError(f"method {base!r} takes no reuse ratio")
        if base in _REUSABLE:
            plan = [fixed] if fixed is not None else ratios
        else:
            plan = [None]
        for r in plan:
            if r is None:
                label, opts = base, options
            else:
                _check_reuse(r, spec)
                label = base if r == 0 else f"{base}@R={_fmt_reuse(r)}"
                opts = EstimatorOptions(**{**asdict(options), "reuse": float(r)})
            if label in seen:
                continue
            seen.add(label)
            m = _FACTORIES[base](opts)
            out.append(Method(label, m.fn, m.wants_target, m.wants_freq))
    return out
