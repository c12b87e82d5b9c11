"""merge_condition: every available backend against the float64 reference (tests/ops/opharness.py)."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.ops import merge_condition
from wifidiff_fast.ops.merge_condition import _merge_condition_op
from wifidiff_fast.reference import merge_condition_ref, random_points_ref

from opcases import CASES, require
from opharness import OpTester


class TestMergeCondition(OpTester):
    op, ref, custom_op = staticmethod(merge_condition), staticmethod(merge_condition_ref), _merge_condition_op
    native_name = "merge_condition"
    cases = {"tiny": (1, 5, 7, 3), "odd": (3, 19, 23, 20), "256": (2, 256, 256, 64)}  # (B, H, W, points)
    other_inputs = {"lp": (4, 64, 64, 32)}
    lp_outputs = (0, 1)  # a merge copies values: exact in every precision
    lp_interpreter_dtypes = (
        torch.float16,
    )  # the interpreter lacks bf16 constants (compiled Triton has them)

    def inputs(self, case, device, dtype, gen):
        B, H, W, P = case
        R = torch.randn(B, H, W, generator=gen, dtype=torch.float64)
        bld = torch.rand(B, H, W, generator=gen) < 0.2
        M = torch.zeros(B, H * W, dtype=torch.float64)
        M[:, torch.randperm(H * W, generator=gen)[: max(1, H * W // 20)]] = 1.0
        S = torch.where(M > 0, torch.full_like(M, 0.7), M)
        points = random_points_ref(bld, P, gen)
        points[:, ::4] = -1  # every fourth slot empty; the first two slots repeat at the end
        points = torch.cat([points, points[:, :2]], dim=1)
        r, c = points[0, 1].tolist()
        M[0, r * W + c], S[0, r * W + c] = 1.0, 0.7  # a sample under a boost point: it wins
        R, S, M = (t.reshape(B, H, W).to(device, dtype) for t in (R, S, M))
        return R, points.to(device), S, M

    def check(self, out, expected, inputs):
        for o, e in zip(out, expected):
            assert o.dtype == inputs[0].dtype and o.device == inputs[0].device
            assert torch.equal(o.double().cpu(), e)

    def opcheck_args(self, device, backend):
        return [self.make("tiny", device) + (backend,)]

    def bad_calls(self):
        R, points, S, M = self.make("odd", "cpu")
        yield (R, torch.zeros(4, 4, 2, dtype=torch.int64), S, M), {}, ValueError, "points"
        yield (R, points.double(), S, M), {}, TypeError, "dtype"
        yield (R, points, S.double(), M), {}, TypeError, "dtype"
        yield (R, points, S[:, :4], M), {}, ValueError, "shape"
        yield (R[:0], points[:0], S[:0], M[:0]), {}, ValueError, "empty"

    def native_bad_calls(self):
        R, points, S, M = self.make("odd", "cpu")
        yield (R, points[:, :, :1].contiguous(), S, M), RuntimeError, r"\[B, P, 2\]"
        yield (R, points, S.double(), M), (TypeError, RuntimeError), "dtype"
        yield (R, points, S[:, :, ::2], M), RuntimeError, "shape"
        yield (R[:0], points[:0], S[:0], M[:0]), RuntimeError, "empty"


@pytest.mark.parametrize("backend,device", CASES)
def test_merge_ignores_off_grid_points(backend, device):
    require(backend, device)
    R = torch.randn(1, 8, 8, device=device)
    S, M = torch.zeros_like(R), torch.zeros_like(R)
    points = torch.tensor([[[-1, -1], [8, 0], [0, 8], [3, -2], [2, 5]]], device=device)
    S_p, M_p = merge_condition(R, points, S, M, backend=backend)
    assert M_p.sum().item() == 1.0 and M_p[0, 2, 5].item() == 1.0
    assert S_p[0, 2, 5].item() == R[0, 2, 5].item()
