"""``wifidiff-fast info``: versions, op backends (and why not), checkpoints, optional extras."""

from __future__ import annotations

import importlib.util
import platform
import shutil


def collect(build: bool = True, announce=None) -> dict:
    import torch

    from .. import __version__
    from ..ops import _native, backend
    from ..pipeline.estimator import CHECKPOINTS_DIR

    info: dict = {
        "wifidiff_fast": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "gpu_visible": torch.cuda.is_available(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception as exc:
        info["triton"] = f"not importable ({type(exc).__name__})"
    info["compilers"] = {"c++": shutil.which("c++"), "nvcc": shutil.which("nvcc")}
    peek = _native.status(build=False)
    if (
        build
        and announce
        and not peek.loaded
        and peek.path is None
        and not peek.reason.startswith("disabled")
    ):
        announce("building the native extension (first use; about a minute)...")
    st = _native.status(build=build)
    info["native"] = {
        "name": _native.LIB_NAME,
        "loaded": st.loaded,
        "reason": st.reason,
        "built_for": {k: (st.built_for or {}).get(k) for k in ("torch", "python", "cuda", "compiler")}
        if st.built_for
        else None,
        "running": st.running,
    }
    sel = backend.requested()
    info["requested_backend"] = {"name": sel[0], "from": sel[1]} if sel else None
    info["backends"] = {}
    for dev, table in backend.report(build=build).items():
        chosen = next((n for n in backend.DEFAULT_ORDER[dev] if table[n].ok), "reference")
        info["backends"][dev] = {
            "order": list(backend.DEFAULT_ORDER[dev]),
            "runs_on": chosen,
            "available": {
                n: {"ok": av.ok, "reason": av.reason.splitlines()[0][:160]} for n, av in table.items()
            },
        }
    info["checkpoints"] = sorted(p.name for p in CHECKPOINTS_DIR.glob("*") if (p / "config.json").is_file())
    info["extras"] = {name: importlib.util.find_spec(name) is not None for name in ("rasterio", "ray")}
    return info


def show(info: dict, build: bool) -> None:
    from .console import console, table

    out = console()
    rows = [
        ("wifidiff_fast", info["wifidiff_fast"]),
        ("python", info["python"]),
        (
            "torch",
            f"{info['torch']} (CUDA build: {info['cuda_build'] or 'no'}; GPU visible: {info['gpu_visible']})",
        ),
        ("triton", info["triton"]),
        (
            "compilers",
            f"c++ {info['compilers']['c++'] or 'missing'}, nvcc {info['compilers']['nvcc'] or 'missing'}",
        ),
    ]
    nat = info["native"]
    rows.append(
        (
            f"native extension ({nat['name']})",
            nat["reason"] if nat["loaded"] else f"not loaded: {nat['reason']}",
        )
    )
    if nat["built_for"]:
        rows.append(("  built for", str(nat["built_for"])))
    rows.append(("  running", str(nat["running"])))
    req = info["requested_backend"]
    rows.append(
        ("requested backend", f"{req['name']} (from {req['from']})" if req else "none (default order)")
    )
    rows.append(("checkpoints", ", ".join(info["checkpoints"]) or "none"))
    rows.append(("optional", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["extras"].items())))
    out.print(table("wifidiff-fast info", rows))
    for dev, d in info["backends"].items():
        trows = [(name, "yes" if av["ok"] else "no", av["reason"]) for name, av in d["available"].items()]
        note = (
            ""
            if build or d["runs_on"] != "reference"
            else "  (without --no-build, info builds the native extension)"
        )
        out.print(
            table(
                f"{dev} tensors (default order {' > '.join(d['order'])})",
                trows,
                ("backend", "available", "why"),
            )
        )
        out.print(f"  -> ops on {dev} run on: {d['runs_on']}{note}")
