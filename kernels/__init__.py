"""Triton kernels, one module per op (installed as ``wifidiff_fast.kernels``).

Importing this package does not import Triton; each op module does, and is imported lazily by
:mod:`wifidiff_fast.ops` only when the Triton backend is selected. ``MODULES`` names the op
modules; ``kernels/_aot.py`` compiles every ``@triton.jit`` kernel for sm_90 ahead of time
(``tests/ops/test_build_checks.py::test_triton_kernels_compile_for_sm90``).
"""

MODULES = ("ddim_step", "critical_points", "elect")
