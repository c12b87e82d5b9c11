"""Just-in-time build and loading of the optional C++/CUDA extension (``csrc/``).

* Nothing happens at import: :func:`status` builds on the first call that asks for it (the first
  op call that selects the ``cpp``/``cuda`` backend), then caches the outcome for the process.
* The build goes to ``<cache_dir>/native/<tag>`` where the tag names the torch version, the
  Python version, CPU/CUDA and the checkout (a hash of the ``csrc/`` path: ninja's build files
  hold absolute source paths, so two clones sharing one directory rebuilt each other's library on
  every switch), so a cached library is only ever loaded by the build it was made for.
  ``build_info.json`` beside it records what it was built for (torch, CUDA, Python, compiler,
  source hash), and a failure says built-for versus running (as xformers' ``_cpp_lib``).
* No compiler, no ninja, a failed build or ``WIFIDIFF_DISABLE_NATIVE=1``: the extension is simply
  unavailable, with the reason; the ops run on the reference (or Triton) path.
* The CUDA sources are compiled when torch is a CUDA build, a GPU is visible and nvcc is found.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import _env

LIB_NAME = "wifidiff_C"
CSRC = Path(__file__).resolve().parent.parent / "csrc"
# nvcc flags of the JIT build; the CI compile check (tests/ops/test_build_checks.py) uses the same.
# Fast math is safe here because the one cancellation-sensitive root (λ2) uses __fsqrt_rn.
CUDA_FLAGS = ["-O3", "--use_fast_math", "-DNDEBUG"]


@dataclass
class NativeStatus:
    loaded: bool
    with_cuda: bool = False
    reason: str = ""
    path: str | None = None
    built_for: dict = field(default_factory=dict)
    running: dict = field(default_factory=dict)
    build_seconds: float | None = None


_lock = threading.Lock()
_status: NativeStatus | None = None
_warned = False


def running_versions(with_cuda: bool) -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda if with_cuda else None,
        "with_cuda": with_cuda,
    }


def _want_cuda() -> tuple[bool, str]:
    if torch.version.cuda is None:
        return False, "torch is a CPU build"
    if not torch.cuda.is_available():
        return False, "no CUDA device visible"
    from torch.utils.cpp_extension import CUDA_HOME

    if CUDA_HOME is None or not (Path(CUDA_HOME) / "bin" / "nvcc").exists():
        return False, "nvcc not found (set CUDA_HOME)"
    return True, f"CUDA {torch.version.cuda}, nvcc in {CUDA_HOME}"


def _sources(with_cuda: bool) -> list[Path]:
    """Every translation unit in csrc/ (no list to keep): each ``<op>.cpp`` registers its own
    operator (csrc/registration.h); the ``<op>_cuda.cu`` launchers join when building with CUDA."""
    return sorted(CSRC.glob("*.cpp")) + (sorted(CSRC.glob("*.cu")) if with_cuda else [])


def _source_hash(with_cuda: bool) -> str:
    h = hashlib.sha256()
    for p in sorted(CSRC.glob("*.h")) + sorted(CSRC.glob("*.cuh")) + _sources(with_cuda):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cpu_isa() -> tuple[str, list[str]]:
    """AVX2+FMA code when this CPU has them (the cache is per machine; the tag keeps it honest)."""
    try:
        flags = next(
            (ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), ""
        ).split()
    except OSError:
        flags = []
    if platform.machine() in ("x86_64", "AMD64") and {"avx2", "fma"} <= set(flags):
        return "avx2", ["-mavx2", "-mfma"]
    return "base", []


def checkout_tag(csrc: Path | None = None) -> str:
    """A short hash of where the sources live: one build directory per checkout."""
    return hashlib.sha256(str((csrc or CSRC).resolve()).encode()).hexdigest()[:10]


def build_dir(with_cuda: bool) -> Path:
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    dev = f"cu{torch.version.cuda}" if with_cuda else "cpu"
    tag = f"torch{torch.__version__.replace('+', '_')}-{py}-{dev}-{_cpu_isa()[0]}-src{checkout_tag()}"
    return _env.cache_dir() / "native" / tag


def _compiler_version() -> str:
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        return "none"
    try:
        return subprocess.run(
            [cxx, "--version"], capture_output=True, text=True, timeout=20
        ).stdout.splitlines()[0]
    except Exception:  # pragma: no cover - exotic toolchains
        return cxx


def _read_build_info(path: Path) -> dict:
    try:
        return json.loads((path / "build_info.json").read_text())
    except (OSError, ValueError):
        return {}


def _peek(with_cuda: bool) -> NativeStatus:
    """What a build would do, without building (for ``info``)."""
    d = build_dir(with_cuda)
    info = _read_build_info(d)
    run = running_versions(with_cuda)
    if info and info.get("sources") == _source_hash(with_cuda):
        return NativeStatus(False, with_cuda, f"built in {d}, loads on first use", str(d), info, run)
    return NativeStatus(False, with_cuda, f"not built yet: builds on first use into {d}", None, info, run)


def _build() -> NativeStatus:
    with_cuda, cuda_why = _want_cuda()
    run = running_versions(with_cuda)
    if _env.native_disabled():
        return NativeStatus(False, with_cuda, "disabled by WIFIDIFF_DISABLE_NATIVE=1", running=run)
    if not _sources(with_cuda):
        return NativeStatus(False, with_cuda, f"no C++ sources in {CSRC}", running=run)
    if shutil.which("c++") is None and shutil.which("g++") is None:
        return NativeStatus(False, with_cuda, "no C++ compiler (c++/g++) on PATH", running=run)
    from torch.utils.cpp_extension import is_ninja_available, load

    if not is_ninja_available():
        return NativeStatus(False, with_cuda, "ninja is not installed (pip install ninja)", running=run)
    d = build_dir(with_cuda)
    d.mkdir(parents=True, exist_ok=True)
    built_for = _read_build_info(d)
    if built_for.get("sources") != _source_hash(with_cuda):
        print(
            "wifidiff_fast: building the native extension (first use, about a minute)…",
            file=sys.stderr,
            flush=True,
        )
    cflags = (
        ["-O3", "-fno-math-errno", "-fopenmp", "-DNDEBUG"]
        + _cpu_isa()[1]
        + (["-DWITH_CUDA"] if with_cuda else [])
    )
    t0 = time.perf_counter()
    try:
        path = load(
            name=LIB_NAME,
            sources=[str(p) for p in _sources(with_cuda)],
            extra_cflags=cflags,
            extra_ldflags=["-fopenmp"],
            extra_cuda_cflags=CUDA_FLAGS,
            extra_include_paths=[str(CSRC)],
            build_directory=str(d),
            with_cuda=with_cuda,
            is_python_module=False,
            verbose=False,
        )
    except Exception as exc:  # compiler errors, a stale or foreign library, ...
        msg = str(exc).strip()
        if len(msg) > 3000:
            msg = "..." + msg[-3000:]
        why = f"build or load failed: {type(exc).__name__}: {msg}"
        if built_for and {k: built_for.get(k) for k in run} != run:
            why += f"\n  built for: {built_for}\n  running:   {run}"
        return NativeStatus(False, with_cuda, why, None, built_for, run)
    info = dict(
        run,
        sources=_source_hash(with_cuda),
        compiler=_compiler_version(),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    if {k: built_for.get(k) for k in info if k != "built_at"} != {
        k: v for k, v in info.items() if k != "built_at"
    }:
        (d / "build_info.json").write_text(json.dumps(info, indent=1))
        built_for = info
    why = "loaded (C++ CPU" + (f" + CUDA; {cuda_why})" if with_cuda else f"; no CUDA: {cuda_why})")
    return NativeStatus(True, with_cuda, why, str(path), built_for, run, time.perf_counter() - t0)


def status(build: bool = True) -> NativeStatus:
    """The extension's state; builds and loads it on the first call with ``build=True``."""
    global _status, _warned
    if _env.native_disabled():  # checked first: it also hides an already loaded library
        return NativeStatus(
            False, False, "disabled by WIFIDIFF_DISABLE_NATIVE=1", running=running_versions(False)
        )
    if _status is not None:
        return _status
    if not build:
        return _peek(_want_cuda()[0])
    with _lock:
        if _status is None:
            _status = _build()
            if not _status.loaded and not _warned:
                _warned = True
                lines = _status.reason.splitlines() or [""]
                first = next((ln.strip() for ln in lines if "error" in ln), lines[0])
                warnings.warn(
                    f"wifidiff_fast: native extension unavailable, using the reference/"
                    f"Triton path ({first[:300]}); set "
                    f"WIFIDIFF_DISABLE_NATIVE=1 to silence this",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _status


def ops():
    """``torch.ops.wifidiff_C`` after a successful load (raises otherwise)."""
    st = status()
    if not st.loaded:
        raise RuntimeError(f"wifidiff_fast native extension unavailable: {st.reason}")
    return torch.ops.wifidiff_C


def _reset_for_tests() -> None:
    global _status
    _status = None
