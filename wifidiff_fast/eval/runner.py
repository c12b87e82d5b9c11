"""Evaluation runner: every method on the same sparse samples of every map, every metric, timings.

Method registry
---------------
A *method* is any callable ``(buildings, samples) -> rss_dbm float32 [H, W]`` (NaN allowed on
buildings only). A method that needs the ground truth (the oracle) is registered with
``wants_target=True`` and is then called as ``fn(buildings, samples, target=rss_dbm)``.

* Baselines: ``idw``, ``rbf``, ``kriging`` (:mod:`wifidiff_fast.eval.baselines`).
* Estimator methods, built lazily (the estimator is imported only when one is asked for, and
  constructed once per process per ``(checkpoint, device)``):
  ``wifidiff`` (boost + election), ``wifidiff-noboost``, ``wifidiff-noelect``,
  ``wifidiff-neither``, ``wifidiff-paper`` (election among diffusion candidates only),
  ``boost-only`` (the boost block's rough map ``R_hat_dbm`` after one network pass,
  ``candidates=0``), ``physics`` (the transmitter-aware path, ``mode="physics"``, given the
  scene's carrier) and
  ``wifidiff-oracle`` (all K candidates, keeps the one with the lowest true MSE on the [0, 1]
  scale — an upper bound on what any election could reach; it sees the ground truth).
* Reuse: ``NAME@R=0.3`` runs an estimator method with midpoint-reuse ratio 0.3. ``--reuse
  0,0.3,0.5`` expands every estimator method (not ``boost-only``) into one method per value;
  R = 0 keeps the plain name.
* :func:`register_method` adds a callable (or a factory) under a new name — tests use it with
  fake methods.

Protocol: samples for map ``i`` (its index in the data set) at count ``N`` are drawn by
``protocol.draw_samples`` with ``protocol.map_seed(seed, i, N)``, once, and given to every
method. Scores: :mod:`wifidiff_fast.eval.metrics` over the non-building pixels
(``buildings == 0``). Times: wall clock around the method call (validation and output included).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.protocol import PAPER_N, draw_samples, map_seed
from ..data.scene import Scene
from ..data.units import dbm_to_unit
from .baselines import BASELINES
from .metrics import all_metrics

__all__ = [
    "Method", "EstimatorOptions", "register_method", "method_names", "resolve_methods",
    "evaluate", "to_markdown", "main", "EvaluationError",
]

METRIC_ORDER = ("mse", "rmse", "nmse", "psnr", "ssim", "rmse_db")


class EvaluationError(RuntimeError):
    """A method failed on one map; the message names the method, data set, map and N."""


@dataclass
class Method:
    """A named estimator ``fn(buildings, samples[, target=...]) -> rss_dbm``."""

    name: str
    fn: Callable
    wants_target: bool = False
    wants_freq: bool = False  # called with freq_mhz= (the scene's carrier, None when unknown)

    def __call__(self, buildings, samples, target=None, freq_mhz=None):
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


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

# name -> factory(options) -> Method
_FACTORIES: dict[str, Callable[[EstimatorOptions], Method]] = {}
# names whose factory accepts a reuse ratio (estimator methods other than boost-only)
_REUSABLE: set[str] = set()
_ESTIMATORS: dict[tuple[str, str], object] = {}


def register_method(name: str, fn: Callable | None = None, *, factory: Callable | None = None,
                    wants_target: bool = False, reusable: bool = False) -> None:
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


def _estimator(options: EstimatorOptions):
    key = (options.checkpoint, options.device)
    if key not in _ESTIMATORS:
        import importlib

        try:
            module = importlib.import_module("wifidiff_fast.pipeline.estimator")
        except ImportError as exc:
            raise ImportError(f"the estimator (wifidiff_fast.pipeline.estimator) is not available: {exc}") from None
        _ESTIMATORS[key] = module.RadioMapEstimator.from_pretrained(options.checkpoint, device=options.device)
    return _ESTIMATORS[key]


def _unit_mse_per_candidate(cands: np.ndarray, target: np.ndarray, open_mask: np.ndarray) -> np.ndarray:
    y = dbm_to_unit(target[open_mask])
    yk = dbm_to_unit(np.asarray(cands, dtype=np.float64)[:, open_mask])
    err = np.mean((yk - y[None]) ** 2, axis=1)
    return np.where(np.isfinite(err), err, np.inf)


def _estimator_factory(name: str, boost: bool, elect: bool, mode: str = "final",
                       boost_candidate: bool | None = None):
    def factory(options: EstimatorOptions) -> Method:
        est = _estimator(options)

        if mode == "boost":
            def fn(buildings, samples):
                res = est.estimate(buildings, samples, candidates=0, seed=options.seed, mode="diffusion")
                return res.R_hat_dbm
            return Method(name, fn)

        if mode == "physics":
            def fn(buildings, samples, freq_mhz=None):
                return est.estimate(buildings, samples, mode="physics", freq_mhz=freq_mhz, seed=options.seed).rss_dbm
            return Method(name, fn, wants_freq=True)

        common = dict(mode="diffusion", candidates=options.candidates, steps=options.steps, reuse=options.reuse,
                      seed=options.seed, boost=boost, elect=elect, boost_candidate=boost_candidate,
                      known_write=options.known_write)
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
register_method("wifidiff-paper", factory=_estimator_factory("wifidiff-paper", True, True, boost_candidate=False),
                reusable=True)
register_method("wifidiff-noboost", factory=_estimator_factory("wifidiff-noboost", False, True), reusable=True)
register_method("wifidiff-noelect", factory=_estimator_factory("wifidiff-noelect", True, False), reusable=True)
register_method("wifidiff-neither", factory=_estimator_factory("wifidiff-neither", False, False), reusable=True)
register_method("boost-only", factory=_estimator_factory("boost-only", True, False, mode="boost"))
# The transmitter-aware path (localise → calibrated propagation prior → residual kriging), the
# shipped default of estimate(); the scene's carrier is passed when the data set knows it.
register_method("physics", factory=_estimator_factory("physics", True, False, mode="physics"))
# The oracle picks, among the same diffusion candidates as wifidiff-paper, the one with the lowest
# true error: the gap to wifidiff-paper is what the election loses.
register_method("wifidiff-oracle", factory=_estimator_factory("wifidiff-oracle", True, True, mode="oracle",
                                                              boost_candidate=False),
                wants_target=True, reusable=True)


def _fmt_reuse(r: float) -> str:
    return f"{r:g}"


def _parse_method_name(spec: str) -> tuple[str, float | None]:
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


def resolve_methods(names: list[str], options: EstimatorOptions | None = None,
                    reuse: list[float] | None = None) -> list[Method]:
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
        base, fixed = _parse_method_name(spec.strip())
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


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

def _finite_or_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def evaluate(datasets: dict[str, list[Scene]], methods: list[Method], ns=PAPER_N, seed: int = 0,
             progress: bool = True) -> dict:
    """Run every method on every map of every data set at every N. Returns the ``datasets`` part
    of the JSON report: ``{dataset: {"maps": [...], "methods": {method: {"median_ms": ...,
    "by_n": {"N": {"mean": {metric: ...}, "median_ms": ..., "per_map": {metric: [...],
    "ms": [...]}}}}}}}``. Means over maps; PSNR can be ``inf`` (a perfect map)."""
    from tqdm.auto import tqdm

    ns = [int(n) for n in ns]
    total = sum(len(s) for s in datasets.values()) * len(ns) * len(methods)
    bar = tqdm(total=total, disable=not progress, file=sys.stderr, unit="map", dynamic_ncols=True)
    report: dict = {}
    try:
        for ds_name, scenes in datasets.items():
            per = {m.name: {n: {k: [] for k in (*METRIC_ORDER, "ms")} for n in ns} for m in methods}
            for i, scene in enumerate(scenes):
                mask = scene.buildings == 0
                for n in ns:
                    samples = draw_samples(scene.rss_dbm, scene.buildings, n, map_seed(seed, i, n))
                    for m in methods:
                        bar.set_description(f"{ds_name} {m.name} N={n}", refresh=False)
                        try:
                            t0 = time.perf_counter()
                            pred = m(scene.buildings.copy(), samples.copy(),
                                     target=scene.rss_dbm.copy() if m.wants_target else None,
                                     freq_mhz=scene.freq_mhz)
                            ms = (time.perf_counter() - t0) * 1e3
                            pred = np.asarray(pred.detach().cpu().numpy() if hasattr(pred, "detach") else pred)
                            if pred.shape != scene.shape:
                                raise ValueError(f"returned shape {pred.shape}, expected {scene.shape}")
                            scores = all_metrics(pred, scene.rss_dbm, mask)
                        except Exception as exc:
                            raise EvaluationError(
                                f"method {m.name} failed on {ds_name} map {i} ({scene.name}) at N={n}: "
                                f"{type(exc).__name__}: {exc}"
                            ) from exc
                        cell = per[m.name][n]
                        for k in METRIC_ORDER:
                            cell[k].append(scores[k])
                        cell["ms"].append(ms)
                        bar.update(1)
            ds_report = {"maps": [s.name for s in scenes], "methods": {}}
            for m in methods:
                all_ms = [t for n in ns for t in per[m.name][n]["ms"]]
                by_n = {}
                for n in ns:
                    cell = per[m.name][n]
                    by_n[str(n)] = {
                        "mean": {k: _mean(cell[k]) for k in METRIC_ORDER},
                        "median_ms": float(np.median(cell["ms"])),
                        "per_map": {k: list(map(float, cell[k])) for k in (*METRIC_ORDER, "ms")},
                    }
                ds_report["methods"][m.name] = {"median_ms": float(np.median(all_ms)), "by_n": by_n}
            report[ds_name] = ds_report
    finally:
        bar.close()
    return report


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    return {"platform": platform.platform(), "cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}


def versions() -> dict:
    out = {}
    for mod in ("torch", "numpy", "scipy", "pykrige", "skimage"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - all are dependencies
            out[mod] = None
    from .. import __version__

    out["wifidiff_fast"] = __version__
    return out


def _num(x: float, kind: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if kind in ("mse", "nmse"):
        return f"{x:.5f}" if x >= 1e-3 else f"{x:.2e}"
    if kind == "rmse":
        return f"{x:.4f}"
    if kind in ("psnr", "rmse_db"):
        return f"{x:.2f}"
    if kind == "ssim":
        return f"{x:.4f}"
    if kind == "ms":
        return f"{x:.0f}" if x >= 10 else f"{x:.1f}"
    return f"{x:g}"


def to_markdown(report: dict) -> str:
    """Human tables: per data set, NMSE and RMSE (dB) by method × N, then every metric."""
    lines: list[str] = []
    seed = report.get("config", {}).get("seed")
    for ds_name, ds in report["datasets"].items():
        methods = ds["methods"]
        if not methods:
            continue
        ns = list(next(iter(methods.values()))["by_n"])
        lines.append(f"### {ds_name} — {len(ds['maps'])} maps, seed {seed}")
        lines.append("")
        for metric, title in (("nmse", "NMSE ([0, 1] scale, non-building pixels; mean over maps)"),
                              ("rmse_db", "RMSE in dB (mean over maps)")):
            lines.append(f"{title}")
            lines.append("")
            lines.append("| method | " + " | ".join(f"N={n}" for n in ns) + " | median ms/map |")
            lines.append("|---|" + "---:|" * (len(ns) + 1))
            for name, m in methods.items():
                cells = [_num(m["by_n"][n]["mean"][metric], metric) for n in ns]
                lines.append(f"| {name} | " + " | ".join(cells) + f" | {_num(m['median_ms'], 'ms')} |")
            lines.append("")
        lines.append("All metrics (means over maps; MSE/RMSE/NMSE/PSNR/SSIM on [0, 1], RMSE dB on dBm)")
        lines.append("")
        lines.append("| method | N | MSE | RMSE | NMSE | PSNR (dB) | SSIM | RMSE (dB) | median ms |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, m in methods.items():
            for n in ns:
                cell = m["by_n"][n]
                vals = " | ".join(_num(cell["mean"][k], k) for k in METRIC_ORDER)
                lines.append(f"| {name} | {n} | {vals} | {_num(cell['median_ms'], 'ms')} |")
        lines.append("")
    return "\n".join(lines)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return _finite_or_none(obj)
    return obj


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _pos_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _names(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def build_parser() -> argparse.ArgumentParser:
    from .datasets import dataset_names

    p = _Parser(prog="python -m wifidiff_fast.eval",
                description="Evaluate radio-map estimators on the sparse-sample protocol (paper §V).")
    p.add_argument("--dataset", type=_names, default=["brat-val"],
                   help=f"comma-separated data sets: {', '.join(dataset_names())} (default brat-val)")
    p.add_argument("--methods", type=_names, default=["idw", "rbf", "kriging"],
                   help="comma-separated methods: " + ", ".join(method_names())
                        + "; NAME@R=r for a reuse ratio (default idw,rbf,kriging)")
    p.add_argument("--n", type=_int_list, default=list(PAPER_N),
                   help="sample counts (default the paper's 10,25,50,100,150,200)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the sample draws (default 0)")
    p.add_argument("--limit", type=_pos_int, default=None, help="evaluate only the first K maps per data set")
    p.add_argument("--out", default=None, help="write the full JSON report here")
    p.add_argument("--markdown", default=None, help="also write the markdown tables here")
    p.add_argument("--data-dir", default=None, help="folder holding brat/ and radiomapseer_like/ "
                                                      "(default $WIFIDIFF_DATA_DIR or ../shared/data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="let errors raise with their traceback")
    g = p.add_argument_group("estimator options (wifidiff* methods)")
    g.add_argument("--checkpoint", default="small")
    g.add_argument("--candidates", type=_pos_int, default=64)
    g.add_argument("--steps", type=_pos_int, default=10)
    g.add_argument("--reuse", type=_float_list, default=[0.0],
                   help="midpoint-reuse ratio(s) in [0, 1); several expand wifidiff methods")
    g.add_argument("--device", default="cpu")
    g.add_argument("--known-write", choices=("on", "off"), default=None,
                   help="steer the DDIM steps through the condition raster S′ (default: the checkpoint's)")
    return p


def _check_writable(path: str | None, what: str) -> None:
    if path is None:
        return
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{what}: folder {parent} does not exist")
    if Path(path).is_dir():
        raise UsageError(f"{what}: {path} is a folder")


def run_cli(args: argparse.Namespace, argv: list[str]) -> dict:
    from .datasets import get_dataset

    _check_writable(args.out, "--out")
    _check_writable(args.markdown, "--markdown")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir} is not a folder")
    options = EstimatorOptions(checkpoint=args.checkpoint, candidates=args.candidates, steps=args.steps,
                               reuse=args.reuse[0], device=args.device, seed=args.seed,
                               known_write=None if args.known_write is None else args.known_write == "on")
    # Resolve names first (cheap, catches typos) — building estimator methods loads the model.
    from .datasets import DATASETS

    for name in args.dataset:
        if name not in DATASETS:
            raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    for spec in args.methods:
        base, _ = _parse_method_name(spec)
        if base not in _FACTORIES:
            raise UsageError(f"unknown method {base!r}; choose from {', '.join(_FACTORIES)}")
    datasets = {name: get_dataset(name, data_dir=args.data_dir, limit=args.limit) for name in args.dataset}
    methods = resolve_methods(args.methods, options, reuse=args.reuse)
    results = evaluate(datasets, methods, ns=args.n, seed=args.seed, progress=not args.no_progress)
    report = {
        "schema": "wifidiff_fast.eval/1",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m wifidiff_fast.eval " + shlex.join(argv),
        "argv": list(argv),
        "machine": machine_info(),
        "versions": versions(),
        "config": {"datasets": args.dataset, "methods": [m.name for m in methods], "n": args.n,
                   "seed": args.seed, "limit": args.limit, "estimator": asdict(options),
                   "reuse": args.reuse},
        "metrics": "mse/rmse/nmse/psnr/ssim on the [0,1] scale (x+1)/2 of units.dbm_to_unit, non-building "
                   "pixels; rmse_db on dBm; means over maps; ms = wall time per call; null = non-finite "
                   "(PSNR of a perfect map)",
        "datasets": results,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 1 a method failed, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "wifidiff_fast.eval"
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        report = run_cli(args, argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        return _report_error(prog, exc)
    md = to_markdown(report)
    print(md)
    if args.out:
        Path(args.out).expanduser().write_text(json.dumps(_json_safe(report), indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).expanduser().write_text(md + "\n")
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _report_error(prog: str, exc: Exception) -> int:
    """One line on stderr; 2 = bad input, 1 = a method (or something unexpected) failed."""
    if isinstance(exc, UsageError):
        message, code = str(exc), 2
    elif isinstance(exc, EvaluationError):
        message, code = f"{_first_line(exc)} (rerun with --debug for the traceback)", 1
    elif isinstance(exc, (ValueError, TypeError, FileNotFoundError, ImportError)):
        message, code = _first_line(exc), 2
    else:
        message, code = f"unexpected {type(exc).__name__}: {_first_line(exc)} (rerun with --debug for the traceback)", 1
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code
