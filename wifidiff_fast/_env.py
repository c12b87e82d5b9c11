"""Every ``WIFIDIFF_*`` environment variable is read here and nowhere else.

Reading them through functions (not module constants) lets tests and long-lived services change
the environment after import.
"""

from __future__ import annotations

import os
from pathlib import Path

_BACKENDS = ("auto", "reference", "cpp", "cuda", "triton")


def backend() -> str | None:
    """``WIFIDIFF_BACKEND``: force one op backend (``reference``, ``cpp``, ``cuda``, ``triton``)."""
    value = os.environ.get("WIFIDIFF_BACKEND", "").strip().lower()
    if not value:
        return None
    if value not in _BACKENDS:
        raise ValueError(f"WIFIDIFF_BACKEND={value!r} is not one of {', '.join(_BACKENDS)}")
    return value


def native_disabled() -> bool:
    """``WIFIDIFF_DISABLE_NATIVE=1``: never build or load the C++/CUDA extension."""
    return os.environ.get("WIFIDIFF_DISABLE_NATIVE", "").strip() not in ("", "0", "false", "False")


def native_required() -> bool:
    """``WIFIDIFF_REQUIRE_NATIVE=1``: the test suite fails (instead of skipping the C++ cases) when
    the extension does not build and load (CI sets it)."""
    return os.environ.get("WIFIDIFF_REQUIRE_NATIVE", "").strip() not in ("", "0", "false", "False")


def data_dir() -> Path:
    """``WIFIDIFF_DATA_DIR``: where the third-party development data lives.

    Default: ``../shared/data`` next to the repository checkout (the development layout).
    """
    value = os.environ.get("WIFIDIFF_DATA_DIR")
    if value:
        return Path(value).expanduser()
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def cache_dir() -> Path:
    """``WIFIDIFF_CACHE_DIR``: build cache for the JIT-compiled extension and exported networks."""
    value = os.environ.get("WIFIDIFF_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wifidiff_fast"


def progress() -> bool | None:
    """``WIFIDIFF_PROGRESS``: ``0`` silences progress bars, ``1`` forces them; unset = on a terminal."""
    value = os.environ.get("WIFIDIFF_PROGRESS", "").strip().lower()
    if not value:
        return None
    return value not in ("0", "false", "no", "off")


def split_denoiser() -> bool:
    """``WIFIDIFF_SPLIT_DENOISER=0``: the network engine calls the denoiser on its full input at
    every step instead of conditioning once per request (``runtime.split``; default on)."""
    return os.environ.get("WIFIDIFF_SPLIT_DENOISER", "").strip().lower() not in ("0", "false", "no", "off")


def runtime_cache_dir() -> Path:
    """``WIFIDIFF_RUNTIME_CACHE_DIR``: exported networks (AOTInductor, ONNX, TensorRT); default
    ``<WIFIDIFF_CACHE_DIR>/runtime``."""
    value = os.environ.get("WIFIDIFF_RUNTIME_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    return cache_dir() / "runtime"
