"""``python -m wifidiff_fast info [--no-build]``: which op backends are available here, and why not.

``info`` builds the native extension if it is not cached yet (that is the only way to know whether
it builds here); ``--no-build`` reports the cache state without compiling.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys


def info(build: bool = True) -> int:
    import torch

    from . import __version__
    from .ops import _native, backend

    print(f"wifidiff_fast {__version__}  python {platform.python_version()}  torch {torch.__version__}"
          f"  (CUDA build: {torch.version.cuda or 'no'}; GPU visible: {torch.cuda.is_available()})")
    try:
        import triton

        print(f"triton {triton.__version__}")
    except Exception as exc:
        print(f"triton: not importable ({type(exc).__name__})")
    nvcc = shutil.which("nvcc")
    print(f"compilers: c++ {shutil.which('c++') or 'missing'}, nvcc {nvcc or 'missing'}")
    peek = _native.status(build=False)
    if build and not peek.loaded and peek.path is None and not peek.reason.startswith("disabled"):
        print("building the native extension (first use; about a minute)...", flush=True)
    st = _native.status(build=build)
    # the reason already begins with "loaded" when it is
    reason = st.reason if st.loaded else f"not loaded: {st.reason}"
    print(f"native extension ({_native.LIB_NAME}): {reason}")
    if st.built_for:
        print(f"  built for: { {k: st.built_for.get(k) for k in ('torch', 'python', 'cuda', 'compiler', 'built_at')} }")
    print(f"  running:   {st.running}")
    sel = backend.requested()
    print(f"requested backend: {sel[0]} (from {sel[1]})" if sel else "requested backend: none (default order)")
    for dev, table in backend.report(build=build).items():
        order = " > ".join(backend.DEFAULT_ORDER[dev])
        print(f"\n{dev} tensors (default order {order}):")
        for name, av in table.items():
            mark = "yes" if av.ok else "no "
            print(f"  {name:<10} {mark}  {av.reason.splitlines()[0][:160]}")
        chosen = next((n for n in backend.DEFAULT_ORDER[dev] if table[n].ok), "reference")
        print(f"  -> ops on {dev} run on: {chosen}" + ("" if build or chosen != "reference" else
              "  (without --no-build, info builds the native extension)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wifidiff_fast")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions and available op backends")
    p.add_argument("--no-build", action="store_true", help="do not compile the native extension")
    args = parser.parse_args(argv)
    if args.command == "info":
        return info(build=not args.no_build)
    return 2


if __name__ == "__main__":
    sys.exit(main())
