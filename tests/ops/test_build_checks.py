"""CI build checks: every .cu compiles for sm_90 with nvcc and every Triton kernel AOT-compiles
for GPUTarget("cuda", 90, 32) — both without a GPU (DESIGN §3), skipping cleanly without the tool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wifidiff_fast.ops import _native

CU_FILES = sorted(_native.CSRC.glob("*.cu"))


def _nvcc() -> str | None:
    from torch.utils.cpp_extension import CUDA_HOME

    found = shutil.which("nvcc")
    if found:
        return found
    if CUDA_HOME and (Path(CUDA_HOME) / "bin" / "nvcc").exists():
        return str(Path(CUDA_HOME) / "bin" / "nvcc")
    return None


def test_one_stem_per_op_everywhere():
    """Every op (one specification module per op, reference.OPS) has its files under the same
    stem, every C++/CUDA source belongs to an op (or is shared), and each <op>.cpp registers its
    own operator: the registries are the files (docs/CONTRIBUTING.md, "Adding a fused op")."""
    import wifidiff_fast.ops as ops_pkg
    from wifidiff_fast.reference import OPS

    root = Path(__file__).resolve().parents[2]
    pkg = root / "wifidiff_fast"
    assert set(OPS) >= {"ddim_step", "critical_points", "merge_condition", "elect"}
    for op in OPS:
        for path in (
            pkg / "reference" / f"{op}.py",
            pkg / "ops" / f"{op}.py",
            pkg / "kernels" / f"{op}.py",
            _native.CSRC / f"{op}.cpp",
            _native.CSRC / f"{op}_cuda.cu",
            root / "tests" / "ops" / f"test_{op}.py",
        ):
            assert path.is_file(), f"op {op!r} has no {path.relative_to(root)}"
        assert re.search(rf"WD_REGISTER_OP\(\s*{op}\s*,", (_native.CSRC / f"{op}.cpp").read_text()), op
        assert op in ops_pkg.__all__ and hasattr(torch.ops.wifidiff, op)
    stems = {p.stem.removesuffix("_cuda") for p in _native.CSRC.glob("*.c*") if p.suffix in (".cpp", ".cu")}
    assert stems == set(OPS), f"C++/CUDA sources that are not an op: {stems - set(OPS)}"


def _nvcc_command(tmp_path: Path, src: Path, mode: str, out: Path) -> list[str]:
    """nvcc for sm_90 with the JIT build's flags, against the installed (CPU) torch headers plus a
    shim for the one header only a CUDA build of torch ships. ``mode``: -c or -ptx."""
    shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n")
    inc = Path(torch.__file__).parent / "include"
    return [
        _nvcc(),
        mode,
        "-std=c++17",
        *_native.CUDA_FLAGS,
        "-arch=sm_90",
        "-DWITH_CUDA",
        "-I",
        str(_native.CSRC),
        "-I",
        str(tmp_path / "shim"),
        "-isystem",
        str(inc),
        "-isystem",
        str(inc / "torch" / "csrc" / "api" / "include"),
        str(src),
        "-o",
        str(out),
    ]


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found: CUDA compile check skipped")
def test_cuda_sources_compile_for_sm90(tmp_path):
    """Compile-only (nothing built here can run)."""
    procs = []
    for src in CU_FILES:
        cmd = _nvcc_command(tmp_path, src, "-c", tmp_path / (src.stem + ".o"))
        procs.append(
            (src.name, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        )
        if len(procs) % 2 == 0:  # two cores
            procs[-2][1].wait()
    for name, p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, f"nvcc failed on {name}:\n{out[-4000:]}"
        assert "warning" not in out.lower(), f"nvcc warnings on {name}:\n{out[-4000:]}"


def test_triton_kernels_compile_for_sm90(tmp_path):
    pytest.importorskip("triton", reason="triton not installed: AOT compile check skipped")
    env = dict(os.environ, TRITON_INTERPRET="0", TRITON_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "wifidiff_fast.kernels._aot", "--arch", "90"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    compiled = [ln for ln in proc.stdout.splitlines() if ln.startswith("ok ")]
    # every @triton.jit kernel of every op module is launched by its module's aot_examples()
    kernels_dir = _native.CSRC.parent / "kernels"
    defined = set(
        re.findall(
            r"@triton\.jit\ndef (_\w+_kernel)\(", "".join(p.read_text() for p in kernels_dir.glob("*.py"))
        )
    )
    assert defined and defined == {ln.split()[1] for ln in compiled}, proc.stdout
    # λ2 is a cancellation: its root must be correctly rounded on the GPU (an approximate one
    # creates false critical points on 1-D structure, which the interpreter cannot show)
    lambda2 = [ln for ln in compiled if "_lambda2_kernel" in ln]
    assert lambda2 and all(ln.endswith("sqrt.approx=0") for ln in lambda2), lambda2


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found: CUDA compile check skipped")
def test_cuda_lambda2_root_is_correctly_rounded_under_fast_math(tmp_path):
    ptx = tmp_path / "critical_points.ptx"
    proc = subprocess.run(
        _nvcc_command(tmp_path, _native.CSRC / "critical_points_cuda.cu", "-ptx", ptx),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = ptx.read_text()
    assert "sqrt.rn" in text and "sqrt.approx" not in text  # (sqrt.rn.ftz.f32 under fast math)
