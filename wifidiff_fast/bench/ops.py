"""Fused-op benchmarks: every available backend beside the reference and the peers, one process.

Workloads (DESIGN §6 / issue #5): ``ddim_step`` on 64×1×256×256 (peer: diffusers
``DDIMScheduler.step``), ``critical_points`` on 64 maps of 256² (peers: a loop of scikit-image
``structure_tensor`` + ``structure_tensor_eigenvalues`` and a loop of OpenCV
``cornerEigenValsAndVecs``), ``elect`` for 64 candidates of one 256² map. CPU timings use
``perf_counter``; CUDA timings use CUDA events; warm-up runs are excluded. On a GPU each row also
reports the achieved bandwidth (minimum bytes the op must move / time) as a fraction of the
device's memory bandwidth. Inputs are built once, on the target device, and shared by all rows.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

# Spec memory bandwidths (bytes/s) by device-name fragment; a measured copy bandwidth is reported too.
PEAK_BW = {
    "H200": 4.8e12,
    "H100 SXM": 3.35e12,
    "H100 80GB HBM3": 3.35e12,
    "H100 PCIe": 2.0e12,
    "H100 NVL": 3.9e12,
    "A100-SXM4-80GB": 2.04e12,
    "A100": 1.55e12,
}


@dataclass
class Row:
    op: str
    impl: str
    shape: str
    p50_ms: float
    p90_ms: float
    min_ms: float
    bytes: int = 0
    gbps: float | None = None
    frac_peak: float | None = None
    extra: dict = field(default_factory=dict)


def _timer(device: str):
    if device == "cuda":

        def run(fn, repeat):
            times = []
            for _ in range(repeat):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b))
            return times

        return run

    def run(fn, repeat):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    return run


def _row(op, impl, shape, times, nbytes, peak) -> Row:
    t = sorted(times)
    p50 = statistics.median(t)
    p90 = t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))]
    gbps = nbytes / (t[0] * 1e-3) / 1e9 if nbytes else None
    frac = (gbps * 1e9 / peak) if (gbps and peak) else None
    return Row(op, impl, shape, p50, p90, t[0], nbytes, gbps, frac)


def _measure_group(op, shape, items, device, repeat, peak=None, warmup=2) -> list[Row]:
    """Time several implementations of one op *interleaved* (round-robin), so that a shared,
    loaded machine slows them alike and the ratios stay meaningful.

    items: (impl, fn, slow, nbytes, fn_device); slow implementations run in fewer rounds.
    """
    for _, fn, _, _, _ in items:
        for _ in range(warmup):
            fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = {impl: [] for impl, *_ in items}
    for rnd in range(repeat):
        for impl, fn, slow, _, fdev in items:
            if slow and rnd >= max(3, repeat // 4):
                continue
            times[impl] += _timer(fdev)(fn, 1)
    return [
        _row(op, impl, shape, times[impl], nbytes, peak if fdev == "cuda" else None)
        for impl, _, _, nbytes, fdev in items
    ]


def device_peak(device: str) -> tuple[float | None, str, float | None]:
    """(spec peak bytes/s or None, device name, measured device-to-device copy bytes/s)."""
    if device != "cuda":
        return None, platform.processor() or platform.machine(), None
    name = torch.cuda.get_device_name()
    spec = next((v for k, v in PEAK_BW.items() if k in name), None)
    x = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t = min(_timer("cuda")(lambda: y.copy_(x), 10))
    return spec, name, 2 * x.numel() / (t * 1e-3)


def _backends(device: str) -> list[str]:
    from ..ops import backend

    names = [n for n in backend.BACKENDS if n != "reference" and backend.availability(n, device).ok]
    if device == "cpu":
        names = [n for n in names if n != "triton"]  # the interpreter is not a CPU backend
    return names + ["reference"]


def bench_ddim(device, repeat, peak, batch=64, size=256) -> list[Row]:
    from ..ops import ddim_step
    from ..sampling.schedules import SchedulerConfig, ddim_table

    shape = (batch, 1, size, size)
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(shape, generator=g).to(device)
    eps = torch.randn(shape, generator=g).to(device)
    table, _ = ddim_table(SchedulerConfig(), 10, eta=0.0, device=device)
    step = torch.tensor(3, device=device)
    nbytes = 4 * x.numel() * 4  # read x_t, eps; write x_prev, x0_pred
    s = "x".join(map(str, shape))
    items = [
        (be, lambda be=be: ddim_step(x, eps, table, step, backend=be), False, nbytes, device)
        for be in _backends(device)
    ]
    # the fused known-sample write: one map's condition raster (≈ 264 of 65 536 pixels set, as
    # 200 samples + the boost points) shared by its 64 candidates
    known = torch.rand((1, *shape[1:]), generator=g).to(device) * 2 - 1
    mask = (torch.rand((1, *shape[1:]), generator=g) < 264 / (size * size)).to(device, torch.uint8)
    known_bytes = nbytes + known.numel() * 5
    items += [
        (
            f"{be} +known write",
            lambda be=be: ddim_step(x, eps, table, step, known=known, known_mask=mask, backend=be),
            False,
            known_bytes,
            device,
        )
        for be in _backends(device)
    ]
    try:
        from diffusers import DDIMScheduler

        sched = DDIMScheduler(
            num_train_timesteps=1000,
            beta_schedule="linear",
            clip_sample=True,
            set_alpha_to_one=True,
            timestep_spacing="leading",
        )
        sched.set_timesteps(10)
        t = int(sched.timesteps[3])
        items.append(
            ("diffusers DDIMScheduler.step", lambda: sched.step(eps, t, x, eta=0.0), False, nbytes, device)
        )
    except ImportError:
        pass
    return _measure_group("ddim_step", s, items, device, repeat, peak)


def _maps(B, H, W, device):
    g = torch.Generator(device="cpu").manual_seed(1)
    base = torch.randn(B, 1, H // 8, W // 8, generator=g)
    R = F.interpolate(base, size=(H, W), mode="bicubic", align_corners=False)[:, 0]
    bld = F.interpolate(
        (torch.rand(B, 1, H // 16, W // 16, generator=g) < 0.2).float(), size=(H, W), mode="nearest"
    )[:, 0]
    return R.contiguous().to(device), bld.to(device)


def bench_critical_points(device, repeat, peak, batch=64, size=256) -> list[Row]:
    from ..ops import critical_points

    R, bld = _maps(batch, size, size, device)
    b8 = (bld != 0).to(torch.uint8)
    s = f"{batch}x{size}x{size}"
    nbytes = R.numel() * 4 + b8.numel()
    items = [
        (be, lambda be=be: critical_points(R, b8, 1.5, 64, backend=be), be == "reference", nbytes, device)
        for be in _backends(device)
    ]
    maps = R.float().cpu().numpy()
    try:
        from skimage.feature import structure_tensor, structure_tensor_eigenvalues

        def sk():
            for m in maps:
                structure_tensor_eigenvalues(structure_tensor(m, sigma=1.5, order="rc"))

        items.append(("skimage structure_tensor (+eigvals) loop", sk, True, 0, "cpu"))
    except ImportError:
        pass
    try:
        import cv2

        def cv():
            for m in maps:
                cv2.cornerEigenValsAndVecs(m, 11, 3)

        items.append(("opencv cornerEigenValsAndVecs loop", cv, False, 0, "cpu"))
    except ImportError:
        pass
    return _measure_group("critical_points", s, items, device, repeat, peak)


def bench_elect(device, repeat, peak, candidates=64, size=256) -> list[Row]:
    from ..ops import ElectionParams, elect

    R, bld = _maps(1, size, size, device)
    g = torch.Generator(device="cpu").manual_seed(2)
    noise = F.interpolate(
        torch.randn(1, candidates, size // 8, size // 8, generator=g),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
    )
    cand = (R.cpu()[:, None] + 0.1 * noise + 0.01 * torch.randn(1, candidates, size, size, generator=g)).to(
        device
    )
    S = torch.zeros_like(R)
    M = torch.zeros_like(R)
    M[:, ::37, ::41] = 1.0
    S[M > 0] = R[M > 0]
    alpha = torch.ones(1, device=device)
    p = ElectionParams()
    s = f"1x{candidates}x{size}x{size}"
    nbytes = cand.numel() * 4 * 2  # scores pass + spread pass each read the candidates once
    items = [
        (be, lambda be=be: elect(cand, R, S, M, bld, alpha, p, backend=be), be == "reference", nbytes, device)
        for be in _backends(device)
    ]
    return _measure_group("elect", s, items, device, repeat, peak)


def ratios(rows: list[Row]) -> dict[str, float]:
    """Speed-ups of the fastest engine backend over the reference and the peers (min times)."""
    out = {}
    by = {(r.op, r.impl): r.min_ms for r in rows}
    for op in sorted({r.op for r in rows}):
        engine = [r for r in rows if r.op == op and r.impl in ("cpp", "cuda", "triton")]
        if not engine:
            continue
        best = min(engine, key=lambda r: r.min_ms)
        for (o, impl), ms in by.items():
            if o == op and impl not in ("cpp", "cuda", "triton") and not impl.endswith(" +known write"):
                out[f"{op}: {best.impl} vs {impl}"] = ms / best.min_ms
        for r in engine:  # what the fused known-sample write costs on top of the plain update
            with_write = by.get((op, f"{r.impl} +known write"))
            if with_write is not None:
                out[f"{op}: {r.impl} time with / without the known write"] = with_write / r.min_ms
    return out


def tune_malloc() -> str:
    """Keep freed CPU buffers in the glibc heap instead of unmapping them (mallopt).

    Every implementation allocates its outputs per call; with glibc's defaults a 16 MiB tensor is
    mmapped and page-faulted afresh each time, which costs the fused kernels more than the
    kernels themselves (a service would run jemalloc/tcmalloc or these settings). Applies to every
    row of the run alike; ``--no-malloc-tuning`` measures the defaults.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = [
            libc.mallopt(-3, 32 * 2**20),  # M_MMAP_THRESHOLD (its maximum)
            libc.mallopt(-1, 2**30),  # M_TRIM_THRESHOLD
            libc.mallopt(-2, 64 * 2**20),
        ]  # M_TOP_PAD
        return "glibc mallopt: mmap 32 MiB, trim 1 GiB, top pad 64 MiB" if all(ok) else "mallopt refused"
    except (OSError, AttributeError):
        return "not glibc: allocator defaults"


def run(
    device: str = "cpu",
    repeat: int = 10,
    ops=("ddim_step", "critical_points", "elect"),
    malloc_tuning: bool = True,
):
    malloc = tune_malloc() if malloc_tuning else "allocator defaults"
    peak, name, copy_bw = device_peak(device)
    rows: list[Row] = []
    if "ddim_step" in ops:
        rows += bench_ddim(device, repeat, peak)
    if "critical_points" in ops:
        rows += bench_critical_points(device, repeat, peak)
    if "elect" in ops:
        rows += bench_elect(device, repeat, peak)
    if copy_bw:
        for r in rows:
            if r.gbps:
                r.extra["frac_copy_bw"] = r.gbps * 1e9 / copy_bw
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "peak_bw_GBps": peak / 1e9 if peak else None,
        "copy_bw_GBps": copy_bw / 1e9 if copy_bw else None,
        "machine": platform.node(),
        "malloc": malloc,
        "loadavg": _loadavg(),
    }
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        meta["triton"] = None
    return meta, rows, ratios(rows)


def _loadavg() -> str | None:
    try:
        return open("/proc/loadavg").read().split(" ", 3)[:3].__str__()
    except OSError:
        return None


def format_table(meta, rows, rat) -> str:
    lines = [
        f"# wifidiff_fast op benchmark — {meta['date']} — {meta['device_name']} "
        f"({meta['device']}, torch {meta['torch']}, {meta['threads']} threads)",
        "",
        f"malloc: {meta['malloc']}; load average at start: {meta['loadavg']}",
        "",
        "| op | implementation | shape | min ms | p50 ms | p90 ms | GB/s | of peak |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gb = f"{r.gbps:.0f}" if r.gbps and meta["device"] == "cuda" else ""
        fr = f"{100 * r.frac_peak:.0f}%" if r.frac_peak else ""
        lines.append(
            f"| {r.op} | {r.impl} | {r.shape} | {r.min_ms:.3f} | {r.p50_ms:.3f} | "
            f"{r.p90_ms:.3f} | {gb} | {fr} |"
        )
    lines += ["", "| speed-up (min times) | × |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in rat.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m wifidiff_fast.bench ops")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--ops", default="ddim_step,critical_points,elect")
    p.add_argument("--json", default=None, help="also write the rows and ratios as JSON here")
    p.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc malloc defaults")
    a = p.parse_args(argv)
    meta, rows, rat = run(a.device, a.repeat, tuple(a.ops.split(",")), not a.no_malloc_tuning)
    print(format_table(meta, rows, rat))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "rows": [asdict(r) for r in rows], "ratios": rat}, f, indent=1)
    return 0
