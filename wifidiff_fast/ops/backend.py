"""The one place that decides which implementation runs a fused op.

Precedence: the op's explicit ``backend=`` argument > the innermost :func:`use_backend` context >
``WIFIDIFF_BACKEND`` (read through :mod:`wifidiff_fast._env`) > the default order for the device:

* CPU tensors: ``cpp`` (the JIT-built C++ extension) then ``reference``;
* CUDA tensors: ``cuda`` (the same extension built with nvcc), ``triton``, then ``reference``.

``auto`` anywhere means "the default order". A backend that was *asked for* (argument, context or
environment) but cannot run on the tensors' device raises :class:`BackendUnavailable` with the
reason; the default order silently skips it (``python -m wifidiff_fast info`` says why).
Triton runs CPU tensors only under ``TRITON_INTERPRET=1`` (tests), never by default.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .. import _env
from ..reference import OPS

BACKENDS = ("reference", "cpp", "cuda", "triton")
# On CUDA tensors the fused kernels are opt-in (backend="cuda"/"triton", use_backend(...) or
# WIFIDIFF_BACKEND) until their GPU parity tests (`make gpu-check`) have passed on a GPU; the
# target order once verified is ("cuda", "triton", "reference").
DEFAULT_ORDER = {"cpu": ("cpp", "reference"), "cuda": ("reference",)}

_context: contextvars.ContextVar[str | None] = contextvars.ContextVar("wifidiff_backend", default=None)


class BackendUnavailable(RuntimeError):
    """A backend was requested that cannot run here; the message says why."""


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str


def _check_name(name: str) -> str:
    value = str(name).strip().lower()
    if value != "auto" and value not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    return value


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the ops inside the ``with`` block on backend ``name`` (``auto`` = default order)."""
    token = _context.set(_check_name(name))
    try:
        yield
    finally:
        _context.reset(token)


def _triton_status(device_type: str) -> Availability:
    try:
        import triton  # noqa: F401
        import triton.knobs
    except Exception as exc:  # ImportError, or a broken install
        return Availability(False, f"triton is not importable ({type(exc).__name__}: {exc})")
    if device_type == "cuda":
        return Availability(True, f"triton {triton.__version__}")
    if triton.knobs.runtime.interpret:
        return Availability(True, f"triton {triton.__version__} interpreter (TRITON_INTERPRET=1)")
    return Availability(False, "triton runs CPU tensors only under TRITON_INTERPRET=1")


def availability(backend: str, device_type: str, build: bool = True) -> Availability:
    """Whether ``backend`` can run tensors on ``device_type`` ('cpu' or 'cuda'), and why (not).

    ``build=False`` never compiles the native extension (reports 'not built yet' instead).
    """
    backend = _check_name(backend)
    if backend == "reference":
        return Availability(True, "pure PyTorch (always available)")
    if backend == "triton":
        return _triton_status(device_type)
    from . import _native

    if backend == "cpp" and device_type != "cpu":
        return Availability(False, "the cpp backend runs CPU tensors; use cuda or triton on a GPU")
    if backend == "cuda" and device_type != "cuda":
        return Availability(False, "the cuda backend runs CUDA tensors only")
    st = _native.status(build=build)
    if not st.loaded:
        return Availability(False, st.reason)
    if backend == "cuda" and not st.with_cuda:
        return Availability(False, f"the native extension was built without CUDA ({st.reason})")
    return Availability(True, st.reason)


def requested() -> tuple[str, str] | None:
    """The backend asked for by the context or the environment, and by which, or None."""
    ctx = _context.get()
    if ctx is not None:
        return ctx, "use_backend()"
    env = _env.backend()
    if env is not None:
        return env, "WIFIDIFF_BACKEND"
    return None


def select(op: str, device: torch.device | str, backend: str | None = None) -> str:
    """The backend that runs ``op`` for tensors on ``device`` (see the module docstring)."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}")
    device_type = torch.device(device).type
    if device_type not in DEFAULT_ORDER:
        raise BackendUnavailable(f"{op}: tensors on {device_type!r} are not supported (cpu, cuda)")
    if backend is not None:
        choice, source = _check_name(backend), "backend= argument"
    else:
        choice, source = requested() or ("auto", "default")
    if choice != "auto":
        st = availability(choice, device_type)
        if not st.ok:
            raise BackendUnavailable(
                f"{op}: backend {choice!r} (from {source}) cannot run on {device_type}: {st.reason}"
            )
        return choice
    for name in DEFAULT_ORDER[device_type]:
        if availability(name, device_type).ok:
            return name
    return "reference"


def report(build: bool = False) -> dict[str, dict[str, Availability]]:
    """Availability of every backend per device type (for ``python -m wifidiff_fast info``)."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return {dev: {name: availability(name, dev, build=build) for name in BACKENDS} for dev in devices}
