"""The standard tests every fused op passes, in one base class (torchvision's ``RoIOpTester`` idea).

A test file declares a subclass ``class Test<Op>(OpTester)`` with the op, its reference, its
inputs and its comparison; it inherits eight tests, each over every (backend, device) of
``opcases.CASES``:

1. ``test_matches_reference``: every case of ``cases`` against the float64 reference;
2. ``test_float64``: float64 inputs stay float64 and match the reference tightly;
3. ``test_noncontiguous``: non-contiguous inputs give the contiguous result;
4. ``test_low_precision_two_times_rule``: fp16/bf16 error ≤ 2 × the same-precision reference's
   error + atol (flash-attention's rule);
5. ``test_opcheck``: ``torch.library.opcheck`` of the custom op (schema, fake kernel, autograd);
6. ``test_bad_inputs_raise_before_launch``: clear ``TypeError``/``ValueError`` from Python;
7. ``test_native_checks_mirror_python``: direct calls of ``torch.ops.wifidiff_C.<op>`` hit
   ``TORCH_CHECK``s, never a crash;
8. ``test_cuda_graph_capture_and_replay`` (GPU): new inputs copied into the captured buffers,
   replayed, against the reference.

``cases`` is parametrised by ``tests/ops/conftest.py`` per subclass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
import torch

from opcases import CASES, NATIVE_CASES, interpreted, make_gen, noncontig, require

Inputs = tuple[Any, ...]
BadCall = tuple[tuple, dict, type[Exception], str]  # (args, kwargs, exception, message regex)


def _float64_cpu(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return (x.double() if x.is_floating_point() else x).cpu()
    return x


class OpTester:
    """Declare in a subclass (see the module docstring): ``op``, ``ref``, ``custom_op``,
    ``native_name``, ``cases``, :meth:`inputs`, :meth:`check` and the bad-call lists."""

    op: Callable[..., Any]  # public op: op(*inputs, **kwargs, backend=...)
    ref: Callable[..., Any]  # the reference, same positional inputs and keyword arguments
    custom_op: Any  # the torch.library custom op (for opcheck)
    native_name: str  # name in torch.ops.wifidiff_C
    cases: dict[str, Any]  # case id → what :meth:`inputs` needs (parametrises test 1)
    other_inputs: dict[str, Any] = {}  # more named inputs: "lp" (test 4), "lp-interpreted", ...
    large_cases: frozenset[str] = frozenset({"256", "batch64"})  # skipped in the Triton interpreter
    kwargs: dict[str, Any] = {}  # keyword arguments of both op and ref
    small_case: str = "odd"  # the case of the float64, non-contiguous and graph tests
    float64_tol: dict[str, float] = {"rtol": 1e-12, "atol": 1e-12}  # see check_float64
    float64_skip: tuple[str, ...] = ()  # backends whose fp64 arithmetic order differs on purpose
    # low precision: which outputs are compared, on which case, and atol = abs + rel·max|exact|
    lp_case: str = "lp"
    lp_outputs: tuple[int, ...] = (0,)
    lp_atol_abs: float = 0.0
    lp_atol_rel: float = 0.0
    lp_interpreter_dtypes: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16)

    # ---- what a subclass declares -------------------------------------------------------------
    def inputs(self, case: Any, device: str, dtype: torch.dtype, gen: torch.Generator) -> Inputs:
        raise NotImplementedError

    def check(self, out: Any, expected: Any, inputs: Inputs) -> None:
        """Assert ``out`` (op output) matches ``expected`` (the float64 reference on CPU)."""
        raise NotImplementedError

    def opcheck_args(self, device: str, backend: str) -> Iterable[tuple]:
        raise NotImplementedError

    def bad_calls(self) -> Iterable[BadCall]:
        """Calls of the public op that must raise before any kernel runs."""
        raise NotImplementedError

    def native_bad_calls(self) -> Iterable[tuple[tuple, type[Exception], str]]:
        """Calls of ``torch.ops.wifidiff_C.<op>`` that must raise (args, exception, regex)."""
        raise NotImplementedError

    def check_float64(self, out: Any, expected: Any, inputs: Inputs) -> None:
        """Float64 in, float64 out, within ``float64_tol`` of the reference; integer outputs equal."""
        for o, e in zip(out, expected):
            if e.is_floating_point():
                assert o.dtype == torch.float64
                torch.testing.assert_close(o.cpu(), e, **self.float64_tol)
            else:
                assert torch.equal(o.cpu(), e)

    def low_precision_reference(self, inputs: Inputs) -> Any:
        """The reference at the inputs' own precision (the "same-precision reference")."""
        return self.ref(*inputs, **self.kwargs)

    # ---- helpers ------------------------------------------------------------------------------
    def expected(self, inputs: Inputs) -> Any:
        return self.ref(*(_float64_cpu(x) for x in inputs), **self.kwargs)

    def run(self, inputs: Inputs, backend: str) -> Any:
        return self.op(*inputs, **self.kwargs, backend=backend)

    def make(self, case_id: str, device: str, dtype=torch.float32, seed: int = 0) -> Inputs:
        if case_id == "lp-interpreted" and case_id not in self.other_inputs:
            case_id = "lp"
        spec = self.cases[case_id] if case_id in self.cases else self.other_inputs[case_id]
        return self.inputs(spec, device, dtype, make_gen(1000 + seed + len(case_id)))

    # ---- the eight standard tests ---------------------------------------------------------------
    @pytest.mark.parametrize("backend,device", CASES)
    def test_matches_reference(self, backend, device, case):
        require(backend, device)
        if interpreted(backend, device) and case in self.large_cases:
            pytest.skip("Triton interpreter: small cases only")
        inputs = self.make(case, device)
        self.check(self.run(inputs, backend), self.expected(inputs), inputs)

    @pytest.mark.parametrize("backend,device", CASES)
    def test_float64(self, backend, device):
        require(backend, device)
        if backend in self.float64_skip:
            pytest.skip(f"{backend}: float64 is checked to the float32 tolerance by the other tests")
        inputs = self.make(self.small_case, device, torch.float64)
        self.check_float64(self.run(inputs, backend), self.expected(inputs), inputs)

    @pytest.mark.parametrize("backend,device", CASES)
    def test_noncontiguous(self, backend, device):
        require(backend, device)
        inputs = self.make(self.small_case, device)
        views = tuple(noncontig(x) if isinstance(x, torch.Tensor) and x.dim() > 0 else x for x in inputs)
        out = self.run(views, backend)
        for o in out:
            assert o.is_contiguous()
        self.check(out, self.expected(inputs), inputs)

    @pytest.mark.parametrize("backend,device", NATIVE_CASES)
    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_low_precision_two_times_rule(self, backend, device, dtype):
        require(backend, device)
        if interpreted(backend, device) and dtype not in self.lp_interpreter_dtypes:
            pytest.skip(f"the Triton interpreter cannot run this kernel in {dtype}")
        case = "lp-interpreted" if interpreted(backend, device) else self.lp_case
        inputs = self.make(case, device, dtype)
        exact, same_precision = self.expected(inputs), self.low_precision_reference(inputs)
        out = self.run(inputs, backend)
        for i in self.lp_outputs:
            e = exact[i].double()
            err = (out[i].double().cpu() - e).abs().max().item()
            ref_err = (same_precision[i].to(out[i].dtype).double().cpu() - e).abs().max().item()
            atol = self.lp_atol_abs + self.lp_atol_rel * e.abs().max().item()
            assert err <= 2 * ref_err + atol, (i, err, ref_err)

    @pytest.mark.parametrize("backend,device", CASES)
    def test_opcheck(self, backend, device):
        require(backend, device)
        for args in self.opcheck_args(device, backend):
            torch.library.opcheck(self.custom_op, args)

    def test_bad_inputs_raise_before_launch(self):
        for args, kwargs, exc, match in self.bad_calls():
            with pytest.raises(exc, match=match):
                self.op(*args, **kwargs)

    def test_native_checks_mirror_python(self):
        from wifidiff_fast.ops import _native

        if not _native.status().loaded:
            pytest.skip(f"native extension unavailable: {_native.status().reason.splitlines()[0]}")
        native = getattr(_native.ops(), self.native_name)
        for args, exc, match in self.native_bad_calls():
            with pytest.raises(exc, match=match):
                native(*args)

    @pytest.mark.gpu
    @pytest.mark.parametrize("backend", ["cuda", "triton"])
    def test_cuda_graph_capture_and_replay(self, backend):
        require(backend, "cuda")
        inputs = self.make(self.small_case, "cuda")
        self.run(inputs, backend)  # warm-up: compiles, loads, caches device tables
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.run(inputs, backend)
        for dst, src in zip(inputs, self.make(self.small_case, "cuda", seed=1)):
            if isinstance(dst, torch.Tensor) and dst.is_floating_point():
                dst.copy_(src)
        graph.replay()
        torch.cuda.synchronize()
        self.check(out, self.expected(inputs), inputs)
