"""The evaluation report: markdown tables, the JSON-safe form, and the machine and versions it ran on."""

from __future__ import annotations

import math
import os
import platform

from .runner import METRIC_ORDER

__all__ = ["to_markdown", "json_safe", "machine_info", "versions"]


def _finite_or_none(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


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
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


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
        for metric, title in (
            ("nmse", "NMSE ([0, 1] scale, non-building pixels; mean over maps)"),
            ("rmse_db", "RMSE in dB (mean over maps)"),
        ):
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


def json_safe(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float):
        return _finite_or_none(obj)
    return obj
