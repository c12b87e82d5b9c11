"""ddim_step: every available backend against the float64 reference (DESIGN §2b; tests/ops/opharness.py)."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.ops import ddim_step
from wifidiff_fast.ops.ddim_step import _ddim_step_op
from wifidiff_fast.reference import ddim_step_ref
from wifidiff_fast.sampling.schedules import SchedulerConfig, ddim_table

from opcases import CASES, noncontig, require
from opharness import OpTester


class TestDdimStep(OpTester):
    op, ref, custom_op, native_name = (
        staticmethod(ddim_step),
        staticmethod(ddim_step_ref),
        _ddim_step_op,
        "ddim_step",
    )
    # (shape [N, C, H, W], step ("dev" = a device tensor of 9), clip, noise, known groups G)
    cases = {
        "tiny": ((1, 1, 3, 5), 0, True, True, 0),
        "odd": ((3, 1, 37, 53), 4, True, True, 0),
        "odd-noclip": ((3, 1, 37, 53), "dev", False, False, 0),
        "256": ((2, 1, 256, 256), "dev", True, True, 0),
        "batch64": ((64, 1, 64, 64), 4, False, False, 0),
        "odd-known-G3": ((3, 1, 37, 53), 5, True, True, 3),
        "odd-known-G1": ((3, 1, 37, 53), 9, True, True, 1),
        "batch64-known": ((64, 1, 64, 64), 9, True, True, 4),
    }
    other_inputs = {"lp": ((4, 1, 256, 256), 3, True, True, 0), "bad": ((2, 1, 4, 4), 0, True, True, 1)}
    large_cases = frozenset({"256", "batch64", "batch64-known"})
    lp_outputs, lp_atol_abs = (0, 1), 1e-3

    def inputs(self, case, device, dtype, gen):
        shape, step, clip, noise, groups = case
        table, _ = ddim_table(SchedulerConfig(), 10, eta=0.5, device=device)
        x, eps, z = (
            torch.randn(shape, generator=gen, dtype=torch.float64).to(device, dtype) for _ in range(3)
        )
        step = torch.tensor(9, device=device) if step == "dev" else step
        known = mask = None
        if groups:  # the condition raster S′ (values in [-1, 1]) and its mask M′, [G, C, H, W]
            known = (torch.rand((groups, *shape[1:]), generator=gen, dtype=torch.float64) * 2 - 1).to(
                device, dtype
            )
            mask = (torch.rand((groups, *shape[1:]), generator=gen) < 0.2).to(device)
        return x, eps, table, step, z if noise else None, clip, 1.0, known, mask

    def check(self, out, expected, inputs):
        x, known, mask = inputs[0], inputs[7], inputs[8]
        assert out[0].shape == x.shape and out[0].dtype == x.dtype and out[0].device == x.device
        for o, e in zip(out, expected):  # the last step divides by sqrt(ᾱ_t) ≈ 0.07: fp32 round-off
            torch.testing.assert_close(o.double().cpu(), e, rtol=1e-5, atol=2e-5)
        if known is not None:  # the spec itself: x0 is exactly the known value where the mask is set
            per = x.shape[0] // known.shape[0]
            written = mask.repeat_interleave(per, 0)
            assert torch.equal(out[1][written], known.repeat_interleave(per, 0)[written])

    def opcheck_args(self, device, backend):
        x, eps, table, _, z, _, _, known, mask = self.make("odd-known-G1", device)
        step = torch.tensor(1)
        return [
            (x, eps, table, step, z, True, 1.0, None, None, backend),
            (x, eps, table, step, None, False, 1.0, None, None, backend),
            (x, eps, table, step, z, True, 1.0, known, mask.to(torch.uint8), backend),
        ]

    def bad_calls(self):
        x, eps, table, _, _, _, _, known, mask = self.make("bad", "cpu")
        yield (x.long(), eps, table, 0), {}, TypeError, "dtype"
        yield (x, eps.double(), table, 0), {}, TypeError, "eps"
        yield (x, eps[:1], table, 0), {}, ValueError, "shape"
        yield (x[:0], eps[:0], table, 0), {}, ValueError, "empty"
        yield (x, eps, table[:, :4], 0), {}, ValueError, r"\[n_steps, 5\]"
        yield (x, eps, table, 10), {}, ValueError, "out of range"
        yield (x, eps, table, 1.5), {}, TypeError, "step"
        yield (x, eps, table, torch.tensor([1])), {}, ValueError, "0-D"
        yield (x, eps, table, 0), {"clip_range": 0.0}, ValueError, "clip_range"
        yield (x, eps, table, 0), {"backend": "fortran"}, ValueError, "unknown backend"
        yield (x, eps, table, 0), {"known": known}, ValueError, "together"
        for k, m in ((known[:, :, :3], mask[:, :, :3]), (torch.cat([known] * 3), torch.cat([mask] * 3))):
            yield (x, eps, table, 0), {"known": k, "known_mask": m}, ValueError, "G dividing 2"
        yield (x, eps, table, 0), {"known": known.double(), "known_mask": mask}, TypeError, "known"
        yield (x, eps, table, 0), {"known": known, "known_mask": mask[..., :2]}, ValueError, "known_mask"

    def native_bad_calls(self):
        x, eps, table, _, _, _, _, known, mask = self.make("bad", "cpu")
        step, mask, no = torch.tensor(0), mask.to(torch.uint8), (None, True, 1.0, None, None)
        yield (noncontig(x), noncontig(eps), table, step, *no), RuntimeError, "contiguous"
        yield (x, eps, table, torch.tensor(10), *no), RuntimeError, "out of range"
        yield (x[:0], eps[:0], table, step, *no), RuntimeError, "empty"
        yield (x, eps.double(), table, step, *no), (TypeError, RuntimeError), "dtype"
        yield (x, eps, table, step, None, True, 1.0, known, None), RuntimeError, "together"
        yield (
            (x, eps, table, step, None, True, 1.0, torch.cat([known] * 3), torch.cat([mask] * 3)),
            RuntimeError,
            "G dividing",
        )
        yield (x, eps, table, step, None, True, 1.0, known, mask.bool()), (TypeError, RuntimeError), "dtype"
        yield (x, eps, table, step, None, True, 1.0, known, mask[..., :2].contiguous()), RuntimeError, "shape"


@pytest.mark.parametrize("backend,device", CASES)
def test_known_write_groups_follow_the_candidate_layout(backend, device):
    """K = N // G consecutive candidates share a raster row (repeat_interleave, not repeat)."""
    require(backend, device)
    x, eps, table, *_ = TestDdimStep().make("tiny", device)
    x, eps = x.expand(6, 1, 3, 5).contiguous(), eps.expand(6, 1, 3, 5).contiguous()
    known = torch.tensor([-0.5, 0.25, 0.75], device=device).view(3, 1, 1, 1).expand(3, 1, 3, 5).contiguous()
    _, x0 = ddim_step(
        x, eps, table, 2, known=known, known_mask=torch.ones_like(known, dtype=torch.bool), backend=backend
    )
    assert (
        x0.amin(dim=(1, 2, 3)).tolist()
        == x0.amax(dim=(1, 2, 3)).tolist()
        == [-0.5, -0.5, 0.25, 0.25, 0.75, 0.75]
    )


@pytest.mark.parametrize("backend,device", [c for c in CASES if c.values[0] not in ("reference", "cpp")])
def test_out_of_range_device_step_poisons_instead_of_reading_out_of_bounds(backend, device):
    """(A CPU step is read on the host and range-checked with an error instead.)"""
    require(backend, device)
    x, eps, table, *_ = TestDdimStep().make("tiny", device)
    assert torch.isnan(ddim_step(x, eps, table, torch.tensor(99, device=device), backend=backend)[0]).all()
