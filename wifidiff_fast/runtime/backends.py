"""The one place that decides which backend runs the networks (AttUnet, denoiser, correction).

Backends (all behind :class:`~wifidiff_fast.runtime.runners.NetworkRunner`):

* ``eager``     — the PyTorch module itself (the reference; always available);
* ``compile``   — ``torch.compile`` with inductor (``reduce-overhead``, i.e. CUDA graphs, on a GPU);
* ``aot``       — ``torch.export`` + AOTInductor, a package built once and cached on disk;
* ``onnx``      — ``torch.onnx.export`` run by ONNX Runtime (CPU, or CUDA with onnxruntime-gpu);
* ``tensorrt``  — a TensorRT engine built from the same ONNX (only where ``tensorrt`` is installed).

``auto`` is the default order for the device, chosen by measurement (docs/results/engine_cpu.md):
the first available one wins. A backend asked for by name that cannot run here raises
:class:`NetworkBackendUnavailable` naming the missing piece and the fix.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass

import torch

NETWORK_BACKENDS = ("eager", "compile", "aot", "onnx", "tensorrt")
# CPU: AOTInductor measured fastest of the compiled forms on 2-core Xeons (engine_cpu.md);
# CUDA: TensorRT where installed, else inductor under CUDA graphs.
DEFAULT_ORDER = {"cpu": ("aot", "onnx", "compile", "eager"), "cuda": ("tensorrt", "compile", "eager")}


class NetworkBackendUnavailable(RuntimeError):
    """A network backend was requested that cannot run here; the message says why and the fix."""


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _cxx() -> str | None:
    return shutil.which("c++") or shutil.which("g++")


def availability(backend: str, device: torch.device | str) -> Availability:
    """Whether ``backend`` can run networks on ``device``, and why (not)."""
    dev = torch.device(device)
    if backend not in NETWORK_BACKENDS:
        raise ValueError(
            f"unknown network backend {backend!r}; choose one of auto, {', '.join(NETWORK_BACKENDS)}"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        return Availability(False, "no CUDA device is visible to this torch")
    if backend == "eager":
        return Availability(True, "PyTorch eager (always available)")
    if backend in ("compile", "aot"):
        if dev.type == "cpu" and _cxx() is None:
            return Availability(
                False,
                "inductor's CPU code generation needs a C++ compiler (c++/g++) on PATH; "
                "install g++ (apt-get install g++)",
            )
        if dev.type == "cuda" and not _has("triton"):
            return Availability(False, "inductor on CUDA needs triton (pip install triton)")
        if backend == "aot" and not hasattr(torch._inductor, "aoti_compile_and_package"):
            return Availability(
                False,
                f"torch {torch.__version__} has no torch._inductor.aoti_compile_and_package; "
                "use torch >= 2.6",
            )
        return Availability(True, f"inductor (torch {torch.__version__})")
    if backend == "onnx":
        missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if not _has(m)]
        if missing:
            return Availability(
                False,
                f"the ONNX backend needs {', '.join(missing)}: "
                f"pip install {' '.join(missing)} (or pip install -e '.[test]')",
            )
        if dev.type == "cuda":
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                return Availability(
                    False, "this onnxruntime has no CUDAExecutionProvider: pip install onnxruntime-gpu"
                )
        import onnxruntime

        return Availability(True, f"onnxruntime {onnxruntime.__version__}")
    # tensorrt
    if dev.type != "cuda":
        return Availability(False, "TensorRT runs on NVIDIA GPUs only; use aot or onnx on the CPU")
    missing = [m for m in ("tensorrt", "onnx", "onnxscript") if not _has(m)]
    if missing:
        return Availability(
            False,
            f"the TensorRT backend needs {', '.join(missing)} (the tensorrt Python package "
            "with its libraries; not installable on this project's machines, DESIGN §3)",
        )
    return Availability(True, "tensorrt")


def select(backend: str, device: torch.device | str) -> str:
    """The network backend to use on ``device``: ``backend`` itself when it can run here (else
    :class:`NetworkBackendUnavailable`), or for ``auto`` the first available in the default order."""
    name = str(backend).strip().lower()
    dev = torch.device(device)
    if name == "auto":
        for candidate in DEFAULT_ORDER.get(dev.type, ("eager",)):
            if availability(candidate, dev).ok:
                return candidate
        return "eager"
    st = availability(name, dev)
    if not st.ok:
        raise NetworkBackendUnavailable(f"network backend {name!r} cannot run on {dev}: {st.reason}")
    return name


def report(device: torch.device | str = "cpu") -> dict[str, Availability]:
    return {name: availability(name, device) for name in NETWORK_BACKENDS}
