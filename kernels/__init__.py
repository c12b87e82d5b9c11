"""Triton kernels, one module per op (installed as ``wifidiff_fast.kernels``).

Importing this package does not import Triton; each op module does, and is imported lazily by
:mod:`wifidiff_fast.ops` only when the Triton backend is selected. ``KERNELS`` lists every
``@triton.jit`` function with a representative signature for the ahead-of-time compile check
(``tests/ops/test_triton_aot.py``).
"""

MODULES = ("ddim_step", "critical_points", "elect")
