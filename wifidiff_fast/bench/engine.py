"""``python -m wifidiff_fast.bench [paper] [batch] [reuse] [fast]``: the engine beside the reference.

Workloads (DESIGN §6, issue #12), all on the bundled example maps, diffusion path:

* ``paper`` — 1 map, 256², N = 50, K = 64, S = 10;
* ``batch`` — ``--batch-size`` maps (16) in one ``estimate_batch`` call;
* ``reuse`` — the paper request on a layout seen before (its stage-1 midpoints cached), with new
  samples each run, for R ∈ ``--ratios`` (0.5, 0.7, 0.9);
* ``fast``  — the boost map alone (``candidates=0``), beside PyKrige ordinary kriging and SciPy's
  RBF interpolation on the same maps and samples; when the checkpoint averages the boost map over
  the grid's 8 symmetries (``boost.tta``), also the engine's single pass (``tta=False``).

The engine (``backend="auto"`` ops, ``--backend`` networks, channels_last) and the reference
(plain-PyTorch ops, eager fp32 networks) run on the same inputs in the same process, their runs
interleaved (engine, reference, reference, engine, …) so a loaded machine slows both alike; the
table gives p50/p90 per stage after ``--warmup`` runs, maps/s, peak memory of the timed runs (CUDA:
the allocator's peak; CPU: the sampled RSS peak above the RSS before each run, :mod:`.memory`),
the reference/engine ratio of the p50 totals and whether the engine elected the same candidate as the reference in
every run. Building or loading the engine's compiled networks happens before the first run and
is reported separately, never inside a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time

import numpy as np
import torch

from .memory import PeakRSS

STAGES = ("boost", "critical_points", "generation", "election", "total")
WORKLOADS = ("paper", "batch", "reuse", "fast")


def say(msg: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def inputs(n_maps: int, n_samples: int, draw: int = 0):
    """``n_maps`` (buildings, samples) pairs from the bundled examples; ``draw`` picks new samples."""
    from ..data.loaders import example_scenes
    from ..data.protocol import draw_samples, map_seed

    scenes = example_scenes()
    items = []
    for i in range(n_maps):
        sc = scenes[i % len(scenes)]
        rng = map_seed(1000 * draw + i // len(scenes), i % len(scenes), n_samples)
        items.append((sc.buildings, draw_samples(sc.rss_dbm, sc.buildings, n_samples, rng)))
    return items


def summarise(
    name: str,
    impl: str,
    timings: list[dict],
    maps: int,
    peak: float,
    extra: dict | None = None,
    rss_delta: float | None = None,
) -> dict:
    """One table row. ``peak``: CUDA, the allocator's peak (``max_memory_allocated``); CPU, the
    highest process RSS sampled during the timed runs. ``rss_delta`` (CPU only, else None): the
    most RSS one timed run added above the RSS just before it — the per-row figure on CPU."""
    row = {
        "workload": name,
        "impl": impl,
        "maps": maps,
        "runs": len(timings),
        "peak_mem_mb": round(peak, 1),
        "peak_rss_delta_mb": None if rss_delta is None else round(rss_delta, 1),
    }
    for s in STAGES:
        v = np.asarray([t.get(s, 0.0) for t in timings], dtype=np.float64)
        row[f"{s}_p50_ms"] = float(np.percentile(v, 50)) if len(v) else float("nan")
        row[f"{s}_p90_ms"] = float(np.percentile(v, 90)) if len(v) else float("nan")
    row["maps_per_s"] = maps / (row["total_p50_ms"] / 1e3) if row["total_p50_ms"] > 0 else float("nan")
    row.update(extra or {})
    return row


def interleaved(label: str, calls: dict, warmup: int, runs: int, device: torch.device):
    """Run each callable ``warmup + runs`` times, alternating their order every round.

    ``calls``: impl -> fn() returning (timings dict, elected list or None). Returns per impl the
    measured timings, the elected lists and the peak memory of the timed runs only (``peak``; on
    CPU also ``rss_delta``, else None; see :func:`summarise`)."""
    cuda = device.type == "cuda"
    out = {k: {"timings": [], "elected": [], "peaks": [], "rss_deltas": []} for k in calls}
    names = list(calls)
    for r in range(warmup + runs):
        order = names if r % 2 == 0 else names[::-1]
        timed = r >= warmup
        for impl in order:
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            # CPU: sampled per run, as ru_maxrss is the process's lifetime peak (one value for all rows)
            rss = PeakRSS() if timed and not cuda else contextlib.nullcontext()
            with rss:
                t0 = time.perf_counter()
                timings, elected = calls[impl]()
                wall = time.perf_counter() - t0
            kind = "warm-up" if r < warmup else f"run {r - warmup + 1}/{runs}"
            say(f"{label}: {impl:<10} {kind:<10} {wall:7.2f} s")
            if timed:
                m = out[impl]
                m["timings"].append(timings)
                m["elected"].append(elected)
                if cuda:
                    m["peaks"].append(torch.cuda.max_memory_allocated(device) / 2**20)
                else:
                    m["peaks"].append(rss.peak_mb)
                    m["rss_deltas"].append(rss.delta_mb)
    for m in out.values():  # np.max keeps a nan (RSS unreadable here) visible
        m["peak"] = float(np.max(m.pop("peaks")))
        deltas = m.pop("rss_deltas")
        m["rss_delta"] = float(np.max(deltas)) if deltas else None
    return out


def estimator_call(est, items, **kw):
    def call():
        res = est.estimate_batch(items, **kw)
        return res[0].timings_ms, [r.elected for r in res]

    return call


def compare_rows(name: str, measured: dict, maps: int) -> list[dict]:
    ref = measured.get("reference")
    rows = []
    for impl, m in measured.items():
        extra = {}
        elected = [e for run in m["elected"] if run is not None for e in run]
        if impl != "reference" and ref is not None and any(e >= 0 for e in elected):  # K = 0 elects nothing
            extra["same_elected"] = all(a == b for a, b in zip(m["elected"], ref["elected"]))
            extra["elected"] = m["elected"][-1]
        rows.append(summarise(name, impl, m["timings"], maps, m["peak"], extra, m["rss_delta"]))
    engine = next((r for r in rows if r["impl"] == "engine"), None)
    for row in rows:  # the reference row's value is the engine's speed-up
        row["over_engine"] = row["total_p50_ms"] / engine["total_p50_ms"] if engine else float("nan")
    return rows


def build(args, device):
    """The engine and the reference estimators; the engine's networks are prepared here."""
    from .. import RadioMapEstimator

    ests = {}
    say(
        f"loading the engine: ops auto, networks {args.backend} (first use of a backend compiles "
        "and caches its networks: minutes on a CPU, then seconds)"
    )
    t0 = time.perf_counter()
    eng = RadioMapEstimator.from_pretrained(
        args.checkpoint,
        device=str(device),
        backend="auto",
        network_backend=args.backend,
        network_dtype=args.dtype,
        chunk=args.chunk,
        progress=False,
        cuda_graphs=args.graphs,
        channels_last=True if args.channels_last else None,
    )
    ests["engine"] = eng
    if args.compare != "none":
        ests["reference"] = RadioMapEstimator.from_pretrained(
            args.checkpoint,
            device=str(device),
            backend="reference",
            network_backend=args.compare,
            progress=False,
        )
    say(
        f"engine networks: {eng.engine.describe() if eng.engine else 'eager'}; "
        f"loaded in {time.perf_counter() - t0:.1f} s"
    )
    return ests


def prepare_all(ests, shapes_maps, K):
    for name, est in ests.items():
        for maps in shapes_maps:
            t0 = time.perf_counter()
            spent = est.prepare((256, 256), maps, K)
            if spent > 0.5:
                say(
                    f"{name}: prepared {maps} map(s) x K={K} in {time.perf_counter() - t0:.1f} s "
                    "(build/load of compiled networks and native ops; not counted in any timing)"
                )


def run_workload(name: str, args, ests, device) -> list[dict]:
    kw = dict(mode="diffusion", candidates=args.candidates, steps=args.steps, seed=0)
    if name == "paper":
        items = inputs(1, args.n)
        prepare_all(ests, [1], args.candidates)
        calls = {k: estimator_call(e, items, **kw) for k, e in ests.items()}
        return compare_rows("paper", interleaved("paper", calls, args.warmup, args.runs, device), 1)
    if name == "batch":
        items = inputs(args.batch_size, args.n)
        prepare_all(ests, [args.batch_size], args.candidates)
        calls = {k: estimator_call(e, items, **kw) for k, e in ests.items()}
        return compare_rows(
            f"batch ({args.batch_size} maps)",
            interleaved("batch", calls, args.warmup, args.runs, device),
            args.batch_size,
        )
    if name == "reuse":
        rows = []
        prepare_all(ests, [1], args.candidates)
        for R in args.ratios:
            counter = {"draw": 0}

            def fresh(est, R=R, counter=counter):
                def call():  # same layout, new samples every call: stage 1 comes from the cache
                    counter["draw"] += 1
                    res = est.estimate_batch(inputs(1, args.n, draw=counter["draw"]), reuse=R, **kw)
                    return res[0].timings_ms, None

                return call

            for est in ests.values():  # the layout's first request fills the cache (not timed)
                est.estimate_batch(inputs(1, args.n, draw=0), reuse=R, **kw)
            calls = {k: fresh(e) for k, e in ests.items()}
            rows += compare_rows(
                f"reuse R={R}", interleaved(f"reuse R={R}", calls, args.warmup, args.runs, device), 1
            )
        return rows
    if name == "fast":
        from ..eval.baselines import kriging, rbf

        items = inputs(args.fast_maps, args.n)
        prepare_all(ests, [len(items)], 0)
        calls = {k: estimator_call(e, items, mode="diffusion", candidates=0, seed=0) for k, e in ests.items()}
        if ests["engine"].boost_params.tta:  # the checkpoint averages 8 symmetries: also one pass
            for e in ests.values():
                e.prepare(items[0][0].shape, len(items), 0, tta=False)
            calls["engine, one pass"] = estimator_call(
                ests["engine"], items, mode="diffusion", candidates=0, seed=0, tta=False
            )

        def peer(fn):
            def call():
                t0 = time.perf_counter()
                for b, s in items:
                    fn(b, s)
                return {"total": (time.perf_counter() - t0) * 1e3}, None

            return call

        calls["pykrige"] = peer(kriging)
        calls["scipy-rbf"] = peer(rbf)
        return compare_rows(
            f"fast ({len(items)} maps)",
            interleaved("fast", calls, args.warmup, args.runs, device),
            len(items),
        )
    raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}, ops")


def print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    # CPU rows carry the RSS a run added (the lifetime RSS would be one number for all rows)
    on_cpu = any(r.get("peak_rss_delta_mb") is not None for r in rows)
    table = Table(title=title)
    for col in (
        "workload",
        "impl",
        *(f"{s} p50" for s in STAGES),
        "total p90",
        "maps/s",
        "peak RSS Δ MB" if on_cpu else "peak alloc MB",
        "time ÷ engine",
        "same elected",
    ):
        table.add_column(col, justify="left" if col in ("workload", "impl") else "right")

    def ms(v):
        return "" if v != v or v == 0 else f"{v:.1f}"

    for r in rows:
        same = r.get("same_elected")
        table.add_row(
            r["workload"],
            r["impl"],
            *(ms(r[f"{s}_p50_ms"]) for s in STAGES),
            ms(r["total_p90_ms"]),
            f"{r['maps_per_s']:.3f}",
            f"{r['peak_rss_delta_mb'] if on_cpu else r['peak_mem_mb']:.0f}",
            f"{r['over_engine']:.2f}×",
            "" if same is None else ("yes" if same else "NO"),
        )
    Console(width=200).print(table)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m wifidiff_fast.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "workloads", nargs="*", default=["paper"], help=f"any of {', '.join(WORKLOADS)} (default: paper)"
    )
    p.add_argument(
        "--backend",
        default="auto",
        help="the engine's network backend: auto, eager, compile, aot, onnx, tensorrt (default auto)",
    )
    p.add_argument(
        "--compare",
        default="eager",
        help="the reference's network backend (default eager fp32; 'none' skips the reference)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--dtype", default="float32", help="the engine networks' dtype (float32, bfloat16, float16)"
    )
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", default=None, help="write the rows and the machine here")
    p.add_argument(
        "--nvtx", action="store_true", help="emit NVTX ranges wifidiff/<stage>[<backend>] (Nsight)"
    )
    p.add_argument("--checkpoint", default="small")
    p.add_argument("--n", type=int, default=50, help="samples per map")
    p.add_argument("--candidates", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--fast-maps", type=int, default=4, help="maps in the fast workload")
    p.add_argument("--ratios", type=lambda s: [float(v) for v in s.split(",")], default=[0.5, 0.7, 0.9])
    p.add_argument(
        "--chunk", type=int, default=None, help="the engine's denoiser chunk (default: the estimator's)"
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="channels_last activations also for --backend eager (on by default for compiled backends)",
    )
    p.add_argument(
        "--graphs", action="store_true", help="the engine replays CUDA graphs per shape bucket (GPU)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad:
        print(
            f"error: unknown workload(s) {', '.join(bad)}; choose from {', '.join(WORKLOADS)} "
            "(or `python -m wifidiff_fast.bench ops ...`)",
            file=sys.stderr,
        )
        return 2
    if args.warmup < 0 or args.runs < 1:
        print("error: --warmup must be >= 0 and --runs >= 1", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but this torch sees no CUDA device", file=sys.stderr)
        return 2
    from ..runtime import nvtx

    nvtx.enable(args.nvtx)
    from ..runtime.backends import NetworkBackendUnavailable

    try:
        ests = build(args, device)
    except NetworkBackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = []
    for w in args.workloads:
        say(f"workload {w}: {args.warmup} warm-up + {args.runs} runs per implementation")
        rows += run_workload(w, args, ests, device)
    meta = machine()
    net = ests["engine"].engine.describe() if ests["engine"].engine else "eager"
    print_table(
        rows,
        f"wifidiff_fast engine ({net}) vs reference, {args.device}, K={args.candidates}, "
        f"S={args.steps}, N={args.n}; ms; {meta['cpu']} x{meta['cpu_count']}, {meta['date']}",
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "meta": {
                        **meta,
                        "command": " ".join(["python -m wifidiff_fast.bench", *(argv or sys.argv[1:])]),
                        "engine": net,
                    },
                    "rows": rows,
                },
                fh,
                indent=2,
            )
        say(f"wrote {args.json}")
    return 0
