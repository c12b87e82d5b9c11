"""Ahead-of-time compile of every Triton kernel for an H100 target, without a GPU (CI check).

``python -m wifidiff_fast.kernels._aot [--arch 90]`` compiles every ``@triton.jit`` kernel that
the op launchers start, with the signatures those launches really have, through
``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))``, and prints one line per
kernel; it exits non-zero on the first lowering error the interpreter would never see.

Nothing here is typed by hand. Each op's kernel module (``kernels/<op>.py``, one per op in
:data:`wifidiff_fast.reference.OPS`) has an ``aot_examples()`` generator of small launcher calls
(one per input dtype/variant). A child process runs them under ``TRITON_INTERPRET=1`` and records
the argument types and constexpr values of every kernel launch; this process then compiles each
distinct (kernel, signature, constexprs) for the target. So a new kernel, a new argument or a new
constexpr is covered as soon as its launcher runs it. Run with ``TRITON_INTERPRET`` unset (the
test does, in a subprocess).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import subprocess
import sys
import time
from typing import Any

Launch = dict[str, Any]  # {"module", "kernel", "tag", "signature", "constexprs"}


def _kernel_modules() -> list[str]:
    from ..reference import OPS

    return [f"{__package__}.{op}" for op in OPS]


def record_launches() -> list[Launch]:
    """Run every ``aot_examples()`` launch in the interpreter and record each kernel launch.

    Must run with ``TRITON_INTERPRET=1`` set before Triton is imported (see :func:`main`).
    """
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import mangle_type

    launches: list[Launch] = []
    seen: set[str] = set()
    current = {"tag": ""}
    original_run = InterpretedFunction.run

    def recording_run(self, *args, grid, warmup, **kwargs):
        params = inspect.signature(self.fn).parameters
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        signature, constexprs = {}, {}
        for name, value in bound.arguments.items():
            # `from __future__ import annotations` leaves the annotation as the string "tl.constexpr"
            if "constexpr" in str(params[name].annotation):
                signature[name], constexprs[name] = "constexpr", value
            else:
                signature[name] = mangle_type(value)
        launch = {
            "module": self.fn.__module__,
            "kernel": self.fn.__name__,
            "tag": current["tag"],
            "signature": signature,
            "constexprs": constexprs,
        }
        key = json.dumps([launch["module"], launch["kernel"], signature, constexprs], sort_keys=True)
        if key not in seen:
            seen.add(key)
            launches.append(launch)
        return original_run(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = recording_run
    try:
        for module_name in _kernel_modules():
            module = importlib.import_module(module_name)
            for tag, launcher, args in module.aot_examples():
                current["tag"] = tag
                launcher(*args)
    finally:
        InterpretedFunction.run = original_run
    return launches


def _recorded_in_child() -> list[Launch]:
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run(
        [sys.executable, "-m", f"{__package__}._aot", "--record"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"recording the example launches failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def compile_all(arch: int = 90, verbose: bool = True) -> list[tuple[str, float]]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    done = []
    for launch in _recorded_in_child():
        fn = getattr(importlib.import_module(launch["module"]), launch["kernel"])
        t0 = time.perf_counter()
        kernel = triton.compile(
            ASTSource(fn=fn, signature=launch["signature"], constexprs=launch["constexprs"]), target=target
        )
        dt = time.perf_counter() - t0
        if not kernel.asm.get("cubin"):
            raise RuntimeError(f"{fn.__name__}: no cubin")
        done.append((f"{fn.__name__}[{launch['tag']}]", dt))
        if verbose:
            # approximate roots in the PTX (tl.sqrt on fp32): λ2 must have none (see the kernel)
            approx = kernel.asm.get("ptx", "").count("sqrt.approx")
            print(
                f"ok  {fn.__name__:<24} {launch['tag']:<12} sm_{arch}  {dt:.2f}s  sqrt.approx={approx}",
                flush=True,
            )
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wifidiff_fast.kernels._aot")
    parser.add_argument("--arch", type=int, default=90)
    parser.add_argument(
        "--record",
        action="store_true",
        help="(internal) print the recorded launches as JSON; needs TRITON_INTERPRET=1",
    )
    args = parser.parse_args(argv)
    if args.record:
        json.dump(record_launches(), sys.stdout)
        return 0
    compile_all(args.arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
