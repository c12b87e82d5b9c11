"""Sionna RT, imported lazily on Dr.Jit's LLVM (CPU) backend: the rest of the package never needs it.

Dr.Jit crashes with the LLVM 15 of Debian 12, so unless ``DRJIT_LIBLLVM_PATH`` is already set this
module points it at Debian's libLLVM 19 (``bash scripts/setup_raytrace.sh`` installs it) first.
"""

from __future__ import annotations

import os

# Debian 12 (bookworm) package libllvm19; the first one that exists is used.
LLVM19_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libLLVM-19.so",
    "/usr/lib/x86_64-linux-gnu/libLLVM.so.19.1",
    "/usr/lib/aarch64-linux-gnu/libLLVM-19.so",
    "/usr/lib/aarch64-linux-gnu/libLLVM.so.19.1",
    "/usr/lib/llvm-19/lib/libLLVM-19.so",
    "/usr/lib/llvm-19/lib/libLLVM.so.1",
)

SETUP_HINT = "install the optional extra with `bash scripts/setup_raytrace.sh` (Debian libllvm19 + sionna-rt)"

_RT = None  # the imported sionna.rt module, once loaded


def llvm19_path() -> str | None:
    """Debian's libLLVM 19, or ``None`` when it is not installed."""
    for path in LLVM19_CANDIDATES:
        if os.path.exists(path):
            return path
    return None


def _ensure_llvm_env() -> None:
    """Point Dr.Jit at libLLVM 19 unless the user already chose a library."""
    if not os.environ.get("DRJIT_LIBLLVM_PATH"):
        path = llvm19_path()
        if path is not None:
            os.environ["DRJIT_LIBLLVM_PATH"] = path


def import_sionna():
    """Import ``sionna.rt`` on Dr.Jit's LLVM (CPU) backend; ImportError with a setup hint if absent."""
    global _RT
    if _RT is not None:
        return _RT
    _ensure_llvm_env()
    try:
        import mitsuba as mi

        if mi.variant() is None:
            mi.set_variant("llvm_ad_mono_polarized")
        import drjit as dr
        import sionna.rt as rt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(f"sionna-rt is not importable ({exc}); {SETUP_HINT}") from exc
    # Single-threaded Dr.Jit: with several threads the float atomics, and above all the race for
    # the diffraction-wedge hash slots, make maps differ run to run (by tens of dB in shadows).
    # One thread is bit-reproducible; `generate` gets its throughput from worker processes.
    dr.set_thread_count(1)
    _RT = rt
    return rt


def sionna_available() -> tuple[bool, str]:
    """``(True, version)`` when Sionna RT imports, else ``(False, reason)``."""
    try:
        rt = import_sionna()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, str(exc)
    return True, str(getattr(rt, "__version__", "?"))
