"""``python -m wifidiff_fast.eval``: parse the arguments, run :func:`.runner.evaluate`, write the
report (markdown on stdout, ``--out`` JSON, ``--markdown``). Exit codes: 0 ok, 1 a method failed,
2 bad input; errors are one line unless ``--debug``."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from ..data.protocol import PAPER_N
from ..runtime import progress
from . import runner
from .methods import EstimatorOptions, is_registered, method_names, parse_method_name, resolve_methods
from .report import json_safe, machine_info, to_markdown, versions
from .runner import EvaluationError

__all__ = ["main", "build_parser", "UsageError"]


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

    p = _Parser(
        prog="python -m wifidiff_fast.eval",
        description="Evaluate radio-map estimators on the sparse-sample protocol (paper §V).",
    )
    p.add_argument(
        "--dataset",
        type=_names,
        default=["brat-val"],
        help=f"comma-separated data sets: {', '.join(dataset_names())} (default brat-val)",
    )
    p.add_argument(
        "--methods",
        type=_names,
        default=["idw", "rbf", "kriging"],
        help="comma-separated methods: "
        + ", ".join(method_names())
        + "; NAME@R=r for a reuse ratio (default idw,rbf,kriging)",
    )
    p.add_argument(
        "--n",
        type=_int_list,
        default=list(PAPER_N),
        help="sample counts (default the paper's 10,25,50,100,150,200)",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed of the sample draws (default 0)")
    p.add_argument("--limit", type=_pos_int, default=None, help="evaluate only the first K maps per data set")
    p.add_argument("--out", default=None, help="write the full JSON report here")
    p.add_argument("--markdown", default=None, help="also write the markdown tables here")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding brat/ and radiomapseer_like/ (default $WIFIDIFF_DATA_DIR or ../shared/data)",
    )
    progress.add_quiet_flag(p)
    p.add_argument("--debug", action="store_true", help="let errors raise with their traceback")
    g = p.add_argument_group("estimator options (wifidiff* methods)")
    g.add_argument("--checkpoint", default="small")
    g.add_argument("--candidates", type=_pos_int, default=64)
    g.add_argument("--steps", type=_pos_int, default=10)
    g.add_argument(
        "--reuse",
        type=_float_list,
        default=[0.0],
        help="midpoint-reuse ratio(s) in [0, 1); several expand wifidiff methods",
    )
    g.add_argument("--device", default="cpu")
    g.add_argument(
        "--known-write",
        choices=("on", "off"),
        default=None,
        help="steer the DDIM steps through the condition raster S′ (default: the checkpoint's)",
    )
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
    options = EstimatorOptions(
        checkpoint=args.checkpoint,
        candidates=args.candidates,
        steps=args.steps,
        reuse=args.reuse[0],
        device=args.device,
        seed=args.seed,
        known_write=None if args.known_write is None else args.known_write == "on",
    )
    # Resolve names first (cheap, catches typos) — building estimator methods loads the model.
    from .datasets import DATASETS

    for name in args.dataset:
        if name not in DATASETS:
            raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    for spec in args.methods:
        base, _ = parse_method_name(spec)
        if not is_registered(base):
            raise UsageError(f"unknown method {base!r}; choose from {', '.join(method_names())}")
    datasets = {name: get_dataset(name, data_dir=args.data_dir, limit=args.limit) for name in args.dataset}
    methods = resolve_methods(args.methods, options, reuse=args.reuse)
    results = runner.evaluate(
        datasets, methods, ns=args.n, seed=args.seed, progress=progress.for_cli(args.quiet)
    )
    report = {
        "schema": "wifidiff_fast.eval/1",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m wifidiff_fast.eval " + shlex.join(argv),
        "argv": list(argv),
        "machine": machine_info(),
        "versions": versions(),
        "config": {
            "datasets": args.dataset,
            "methods": [m.name for m in methods],
            "n": args.n,
            "seed": args.seed,
            "limit": args.limit,
            "estimator": asdict(options),
            "reuse": args.reuse,
        },
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
        Path(args.out).expanduser().write_text(json.dumps(json_safe(report), indent=1) + "\n")
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
        message, code = (
            f"unexpected {type(exc).__name__}: {_first_line(exc)} (rerun with --debug for the traceback)",
            1,
        )
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code
