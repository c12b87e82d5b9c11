"""critical_points: every available backend against the float64 reference (tests/ops/opharness.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wifidiff_fast.ops import critical_points
from wifidiff_fast.ops.critical_points import _critical_points_op
from wifidiff_fast.reference import critical_points_ref
from wifidiff_fast.reference.critical_points import structure_tensor_response

from opcases import CASES, noncontig, require
from opharness import OpTester


def smooth_maps(B, H, W, gen, device="cpu", dtype=torch.float32):
    """Rough-map-like fields: bicubic-upsampled noise plus a few peaks, and random buildings."""
    base = torch.randn(B, 1, max(2, H // 6), max(2, W // 6), generator=gen, dtype=torch.float64)
    R = F.interpolate(base, size=(H, W), mode="bicubic", align_corners=False)[:, 0]
    R = R + 0.01 * torch.randn(B, H, W, generator=gen, dtype=torch.float64)
    blocks = torch.rand(B, 1, max(1, H // 8), max(1, W // 8), generator=gen) < 0.25
    bld = F.interpolate(blocks.float(), size=(H, W), mode="nearest")[:, 0]
    return R.to(device=device, dtype=dtype), bld.to(device)


def assert_points_match(out, ref, lam2_64, rtol=2e-4, atol=1e-7):
    """Exact points away from near-ties; a swapped point must tie with the reference's slot."""
    (p, r, c), (p2, r2, c2) = [tuple(t.cpu() for t in x) for x in (out, ref)]
    assert p.shape == p2.shape and r.shape == r2.shape and p.dtype == c.dtype == torch.int64
    torch.testing.assert_close(r.double(), r2.double(), rtol=rtol, atol=atol)
    assert torch.equal(c, c2)
    same = (p == p2).all(-1)
    for b, j in (~same).nonzero().tolist():
        row, col = p[b, j].tolist()
        v = lam2_64[b, row, col].item()  # (an off-grid point raises IndexError here)
        assert row >= 0 and col >= 0 and abs(v - r2[b, j].item()) <= rtol * abs(v) + atol, (
            "not a near-tie",
            b,
            j,
        )
    assert same.float().mean() > 0.9
    for b in range(p.shape[0]):  # distinct valid points, empty slots at the end
        k = int(c[b])
        assert len({tuple(x) for x in p[b, :k].tolist()}) == k
        assert (p[b, k:] == -1).all() and (r[b, k:] == 0).all()


class TestCriticalPoints(OpTester):
    op, ref, custom_op = staticmethod(critical_points), staticmethod(critical_points_ref), _critical_points_op
    native_name = "critical_points"
    # (B, H, W, sigma, capacity, plateau); tiny: capacity > H·W pads
    cases = {
        "tiny": (1, 11, 11, 1.5, 200, False),
        "odd": (3, 37, 53, 1.5, 64, False),
        "256": (2, 256, 256, 1.5, 64, False),
        "batch64": (64, 48, 48, 1.5, 64, False),
        "sigma0.7-plateau": (2, 29, 31, 0.7, 40, True),
        "sigma2-plateau": (2, 29, 31, 2.0, 40, True),
    }
    other_inputs = {"lp": (4, 128, 128, 1.5, 64, False)}
    float64_tol, float64_skip = {"rtol": 1e-12, "atol": 1e-15}, ("triton",)
    lp_outputs, lp_atol_rel = (1,), 1e-3

    def inputs(self, case, device, dtype, gen):
        B, H, W, sigma, capacity, plateau = case
        R, bld = smooth_maps(B, H, W, gen, device, dtype)
        if plateau:  # λ2 = 0 inside, ties on its rim
            R[0, 10:20, 10:20] = 0.5
        return R, bld, sigma, capacity

    def check(self, out, expected, inputs):
        R, _, sigma, _ = inputs
        assert out[1].dtype == R.dtype and out[0].device == R.device
        assert_points_match(out, expected, structure_tensor_response(R.double().cpu(), sigma))

    def low_precision_reference(self, inputs):
        R, bld, sigma, capacity = inputs
        return critical_points_ref(R.float(), bld, sigma, capacity)

    def opcheck_args(self, device, backend):
        R, bld = smooth_maps(2, 16, 16, torch.Generator().manual_seed(11), device)
        return [(R, bld.to(torch.uint8), 1.5, 8, 1e-8, backend)]

    def bad_calls(self):
        R, bld, *_ = self.make("odd", "cpu")
        yield (R[0], bld[0]), {}, ValueError, "3-D"
        yield (R.long(), bld), {}, TypeError, "dtype"
        yield (R, bld[:, :8]), {}, ValueError, "shape"
        yield (R[:0], bld[:0]), {}, ValueError, "empty"
        yield (R, bld), {"capacity": 0}, ValueError, "capacity"
        yield (R[:, :10, :10], bld[:, :10, :10]), {"sigma": 1.5}, ValueError, "window"
        yield (R, bld), {"sigma": 0.0}, ValueError, "sigma"
        yield (R, bld), {"sigma": 1e9}, ValueError, "window"

    def native_bad_calls(self):
        R, bld, *_ = self.make("odd", "cpu")
        b8 = bld.to(torch.uint8)
        yield (R, b8, 1.5, 0, 1e-8), RuntimeError, "capacity"
        yield (R[:, :5, :5].contiguous(), b8[:, :5, :5].contiguous(), 1.5, 4, 1e-8), RuntimeError, "window"
        yield (noncontig(R), b8, 1.5, 4, 1e-8), RuntimeError, "contiguous"
        yield (R, bld, 1.5, 4, 1e-8), (TypeError, RuntimeError), "dtype"
        yield (R[:0], b8[:0], 1.5, 4, 1e-8), RuntimeError, "empty"
        yield (R, b8, 1e9, 4, 1e-8), RuntimeError, "window"  # ceil(3σ) beyond int: no overflow to a 3×3


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("axis", [1, 2])
def test_one_dimensional_structure_has_no_points(backend, device, dtype, axis):
    """An axis-aligned step has b = 0 and one zero eigenvalue: λ2 is exactly 0 with a correctly
    rounded square root, and no point may appear (an approximate GPU sqrt made 10-20 of them)."""
    require(backend, device)
    R = torch.full((2, 24, 31), -0.75, dtype=dtype)
    R[(slice(None), slice(12, None)) if axis == 1 else (slice(None), slice(None), slice(15, None))] = 0.75
    R = R.to(device)
    points, response, count = critical_points(
        R, torch.zeros_like(R, dtype=torch.uint8), capacity=16, backend=backend
    )
    assert count.tolist() == [0, 0] and (points.cpu() == -1).all() and (response.cpu() == 0).all()


def test_triton_launch_limits_fail_before_launch():
    pytest.importorskip("triton")
    from wifidiff_fast.kernels._limits import check_launch

    check_launch("op", {"maps": 65535}, int32_extent=2**31 - 1)  # at the limits: fine
    with pytest.raises(ValueError, match="maps = 65536 exceeds the GPU grid limit"):
        check_launch("op", {"maps": 65536})
    with pytest.raises(ValueError, match="int32"):
        check_launch("op", int32_extent=2**31)
    require("triton", "cpu")
    R = torch.zeros(65536, 11, 11)
    with pytest.raises(ValueError, match="grid limit"):
        critical_points(R, torch.zeros(R.shape, dtype=torch.uint8), capacity=1, backend="triton")


def test_selection_key_layout_matches_the_cpp_header():
    """The Triton key mask is the C++ one (csrc/critical_points.h), so both kernels rank alike."""
    import re

    from wifidiff_fast.ops._native import CSRC

    pytest.importorskip("triton")
    from wifidiff_fast.kernels.critical_points import KEY_INDEX_MASK

    header = (CSRC / "critical_points.h").read_text()
    assert int(re.search(r"kKeyIndexMask = (0x[0-9A-Fa-f]+)ull", header).group(1), 16) == KEY_INDEX_MASK
