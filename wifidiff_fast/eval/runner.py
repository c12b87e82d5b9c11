"""Evaluation runner: every method on the same sparse samples of every map, every metric, timings.

Protocol: samples for map ``i`` (its index in the data set) at count ``N`` are drawn by
``protocol.draw_samples`` with ``protocol.map_seed(seed, i, N)``, once, and given to every
method. Scores: :mod:`wifidiff_fast.eval.metrics` over the non-building pixels
(``buildings == 0``). Times: wall clock around the method call (validation and output included).

The methods are in :mod:`.methods`, the tables and machine facts in :mod:`.report`, the command
line (``python -m wifidiff_fast.eval``) in :mod:`.cli`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..data.protocol import PAPER_N, draw_samples, map_seed
from ..data.scene import Scene
from ..runtime.progress import wanted as progress_wanted
from .methods import Method
from .metrics import all_metrics

__all__ = ["evaluate", "EvaluationError", "METRIC_ORDER"]

METRIC_ORDER = ("mse", "rmse", "nmse", "psnr", "ssim", "rmse_db")


class EvaluationError(RuntimeError):
    """A method failed on one map; the message names the method, data set, map and N."""


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def evaluate(
    datasets: dict[str, list[Scene]],
    methods: list[Method],
    ns=PAPER_N,
    seed: int = 0,
    progress: bool | None = None,
) -> dict:
    """Run every method on every map of every data set at every N. Returns the ``datasets`` part
    of the JSON report: ``{dataset: {"maps": [...], "methods": {method: {"median_ms": ...,
    "by_n": {"N": {"mean": {metric: ...}, "median_ms": ..., "per_map": {metric: [...],
    "ms": [...]}}}}}}}``. Means over maps; PSNR can be ``inf`` (a perfect map). ``progress``:
    a bar on stderr; ``None`` = :func:`wifidiff_fast.runtime.progress.wanted` decides."""
    from tqdm.auto import tqdm

    ns = [int(n) for n in ns]
    total = sum(len(s) for s in datasets.values()) * len(ns) * len(methods)
    bar = tqdm(
        total=total, disable=not progress_wanted(progress), file=sys.stderr, unit="map", dynamic_ncols=True
    )
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
                            pred = m(
                                scene.buildings.copy(),
                                samples.copy(),
                                target=scene.rss_dbm.copy() if m.wants_target else None,
                                freq_mhz=scene.freq_mhz,
                            )
                            ms = (time.perf_counter() - t0) * 1e3
                            pred = np.asarray(
                                pred.detach().cpu().numpy() if hasattr(pred, "detach") else pred
                            )
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
