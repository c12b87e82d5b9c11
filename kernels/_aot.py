"""Ahead-of-time compile of every Triton kernel for an H100 target, without a GPU (CI check).

``python -m wifidiff_fast.kernels._aot [--arch 90]`` compiles each ``@triton.jit`` kernel of this
package with representative signatures (fp32 and the low-precision inputs) through
``triton.compile(ASTSource(...), target=GPUTarget("cuda", arch, 32))`` and prints one line per
kernel; it exits non-zero on the first lowering error the interpreter would never see. Run it
with ``TRITON_INTERPRET`` unset (the test does, in a subprocess).
"""

from __future__ import annotations

import argparse
import sys
import time


def specs():
    from . import critical_points as cp
    from . import ddim_step as dd
    from . import elect as el

    hw = {"H": "i32", "W": "i32"}
    out = []
    for xt, known in (("fp32", False), ("fp32", True), ("bf16", True), ("fp16", True)):
        out.append((dd._ddim_step_kernel, {
            "x_ptr": f"*{xt}", "eps_ptr": f"*{xt}", "noise_ptr": f"*{xt}", "known_ptr": f"*{xt}",
            "known_mask_ptr": "*u8", "table_ptr": "*fp32", "step_ptr": "*i64",
            "x_prev_ptr": f"*{xt}", "x0_ptr": f"*{xt}", "n": "i32", "plane": "i32",
            "per_group": "i32", "n_steps": "i32", "clip_range": "fp32", "HAS_NOISE": "constexpr",
            "CLIP": "constexpr", "HAS_KNOWN": "constexpr", "BLOCK": "constexpr"},
            {"HAS_NOISE": True, "CLIP": True, "HAS_KNOWN": known, "BLOCK": 4096},
            f"{xt}{'+known' if known else ''}"))
    tile = {"BLOCK_H": 16, "BLOCK_W": 64}
    for xt in ("fp32", "bf16", "fp16"):
        out.append((cp._structure_h_kernel, {
            "R_ptr": f"*{xt}", "hb_ptr": "*fp32", "g_ptr": "*fp32", **hw, "RAD": "constexpr",
            "BLOCK_H": "constexpr", "BLOCK_W": "constexpr"}, {"RAD": 5, **tile}, xt))
    for acc in ("fp32", "fp64"):  # λ2's root: sqrt_rn (fp32) or sqrt.rn.f64
        out.append((cp._lambda2_kernel, {
            "hb_ptr": f"*{acc}", "lam_ptr": f"*{acc}", "g_ptr": f"*{acc}", **hw, "RAD": "constexpr",
            "BLOCK_H": "constexpr", "BLOCK_W": "constexpr"}, {"RAD": 5, **tile}, acc))
    out.append((cp._nms_keys_kernel, {
        "lam_ptr": "*fp32", "bld_ptr": "*u8", "keys_ptr": "*i64", **hw, "min_response": "fp32",
        "BLOCK_H": "constexpr", "BLOCK_W": "constexpr"}, tile, "fp32"))
    out.append((cp._merge_fill_kernel, {
        "S_ptr": "*fp32", "M_ptr": "*fp32", "S_out_ptr": "*fp32", "M_out_ptr": "*fp32", "n": "i32",
        "BLOCK": "constexpr"}, {"BLOCK": 4096}, "fp32"))
    out.append((cp._merge_points_kernel, {
        "R_ptr": "*fp32", "points_ptr": "*i64", "S_ptr": "*fp32", "M_ptr": "*fp32",
        "S_out_ptr": "*fp32", "M_out_ptr": "*fp32", "P": "i32", **hw, "BLOCK": "constexpr"},
        {"BLOCK": 128}, "fp32"))
    for xt in ("fp32", "bf16", "fp16"):
        out.append((el._elect_score_kernel, {
            "x_ptr": f"*{xt}", "R_ptr": "*fp32", "S_ptr": "*fp32", "M_ptr": "*fp32",
            "bld_ptr": "*u8", "alpha_ptr": "*fp32", "ring_ptr": "*i32", "drop_ptr": "*fp64",
            "ray_ptr": "*i32", "scal_ptr": "*fp64", "score_ptr": "*fp64", "K": "i32", **hw,
            "R": "i32", "A": "i32", "Q": "i32", "L": "i32", "N_TX": "constexpr",
            "N_TX_P2": "constexpr", "R_P2": "constexpr", "A_P2": "constexpr", "Q_P2": "constexpr",
            "BLOCK": "constexpr"},
            {"N_TX": 3, "N_TX_P2": 4, "R_P2": 4, "A_P2": 16, "Q_P2": 16, "BLOCK": 1024}, xt))
        out.append((el._elect_spread_kernel, {
            "x_ptr": f"*{xt}", "bld_ptr": "*u8", "spread_ptr": "*fp32", "K": "i32", "n": "i32",
            "scale": "fp32", "BLOCK": "constexpr"}, {"BLOCK": 1024}, xt))
    return out


def compile_all(arch: int = 90, verbose: bool = True) -> list[tuple[str, float]]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    done = []
    for fn, signature, constexprs, tag in specs():
        t0 = time.perf_counter()
        kernel = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                                target=target)
        dt = time.perf_counter() - t0
        assert kernel.asm.get("cubin"), f"{fn.__name__}: no cubin"
        done.append((f"{fn.__name__}[{tag}]", dt))
        if verbose:
            # approximate roots in the PTX (tl.sqrt on fp32): λ2 must have none (see the kernel)
            approx = kernel.asm.get("ptx", "").count("sqrt.approx")
            print(f"ok  {fn.__name__:<24} {tag:<10} sm_{arch}  {dt:.2f}s  sqrt.approx={approx}",
                  flush=True)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wifidiff_fast.kernels._aot")
    parser.add_argument("--arch", type=int, default=90)
    args = parser.parse_args(argv)
    compile_all(args.arch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
