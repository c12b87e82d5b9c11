"""Triton kernels, one module per op, named by the op's stem (installed as ``wifidiff_fast.kernels``).

Importing this package does not import Triton; each op module does, and is imported lazily by
:mod:`wifidiff_fast.ops` only when the Triton backend is selected. ``kernels/_aot.py`` compiles
every kernel for sm_90 ahead of time from the launches of each module's ``aot_examples()``
(``tests/ops/test_build_checks.py::test_triton_kernels_compile_for_sm90``).
"""
