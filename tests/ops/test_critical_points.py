"""critical_points and merge_condition: every available backend against the float64 reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from opcases import CASES, NATIVE_CASES, make_gen, noncontig, require, require_small_if_interpreted
from wifidiff_fast.ops import critical_points, merge_condition
from wifidiff_fast.reference import critical_points_ref, merge_condition_ref, random_points_ref
from wifidiff_fast.reference.critical_points import structure_tensor_response

SHAPES = {"tiny": (1, 11, 11), "odd": (3, 37, 53), "256": (2, 256, 256), "batch64": (64, 48, 48)}


def smooth_maps(B, H, W, gen, device="cpu", dtype=torch.float32):
    """Rough-map-like fields: bicubic-upsampled noise plus a few peaks, and random buildings."""
    base = torch.randn(B, 1, max(2, H // 6), max(2, W // 6), generator=gen, dtype=torch.float64)
    R = F.interpolate(base, size=(H, W), mode="bicubic", align_corners=False)[:, 0]
    R = R + 0.01 * torch.randn(B, H, W, generator=gen, dtype=torch.float64)
    blocks = torch.rand(B, 1, max(1, H // 8), max(1, W // 8), generator=gen) < 0.25
    bld = F.interpolate(blocks.float(), size=(H, W), mode="nearest")[:, 0]
    return R.to(device=device, dtype=dtype), bld.to(device)


def assert_points_match(out, ref, lam2_64, rtol=2e-4, atol=1e-7):
    """Exact points away from near-ties; a swapped point must tie with the reference's slot.

    out/ref: (points, response, count); lam2_64: the float64 response map [B, H, W].
    """
    (p, r, c), (p2, r2, c2) = out, ref
    assert p.shape == p2.shape and r.shape == r2.shape and c.shape == c2.shape
    assert p.dtype == torch.int64 and c.dtype == torch.int64
    torch.testing.assert_close(r.double().cpu(), r2.double().cpu(), rtol=rtol, atol=atol)
    p, p2, c, c2 = p.cpu(), p2.cpu(), c.cpu(), c2.cpu()
    assert torch.equal(c, c2)
    same = (p == p2).all(-1)
    B, H, W = lam2_64.shape
    for b, j in (~same).nonzero().tolist():
        row, col = p[b, j].tolist()
        assert 0 <= row < H and 0 <= col < W, (b, j, row, col)
        v = lam2_64[b, row, col].item()
        assert abs(v - r2[b, j].item()) <= rtol * abs(v) + atol, ("not a near-tie", b, j)
    assert same.float().mean() > 0.9
    for b in range(p.shape[0]):  # distinct valid points, empty slots at the end
        k = int(c[b])
        assert len({tuple(x) for x in p[b, :k].tolist()}) == k
        assert (p[b, k:] == -1).all() and (r[b, k:] == 0).all()


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("shape_id", list(SHAPES))
def test_matches_reference(backend, device, shape_id):
    require(backend, device)
    require_small_if_interpreted(backend, device, shape_id)
    gen = make_gen(hash(shape_id) % 1000)
    R, bld = smooth_maps(*SHAPES[shape_id], gen, device)
    capacity = 200 if shape_id == "tiny" else 64  # tiny: capacity > H·W pads
    out = critical_points(R, bld, sigma=1.5, capacity=capacity, backend=backend)
    ref = critical_points_ref(R.double().cpu(), bld.cpu(), 1.5, capacity)
    assert out[1].dtype == R.dtype and out[0].device == R.device
    assert_points_match(out, ref, structure_tensor_response(R.double().cpu(), 1.5))


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("sigma", [0.7, 2.0])
def test_other_sigmas_and_plateaus(backend, device, sigma):
    require(backend, device)
    gen = make_gen(7)
    R, bld = smooth_maps(2, 29, 31, gen, device)
    R[0, 10:20, 10:20] = 0.5  # a plateau: λ2 = 0 inside, ties on its rim
    out = critical_points(R, bld, sigma=sigma, capacity=40, backend=backend)
    ref = critical_points_ref(R.double().cpu(), bld.cpu(), sigma, 40)
    assert_points_match(out, ref, structure_tensor_response(R.double().cpu(), sigma))


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("axis", [1, 2])
def test_one_dimensional_structure_has_no_points(backend, device, dtype, axis):
    """An axis-aligned step has b = 0 and one zero eigenvalue: λ2 is exactly 0 with a correctly
    rounded square root, and no point may appear (an approximate GPU sqrt made 10-20 of them)."""
    require(backend, device)
    R = torch.full((2, 24, 31), -0.75, dtype=dtype)
    if axis == 1:
        R[:, 12:] = 0.75
    else:
        R[:, :, 15:] = 0.75
    R = R.to(device)
    bld = torch.zeros(R.shape, dtype=torch.uint8, device=device)
    points, response, count = critical_points(R, bld, capacity=16, backend=backend)
    assert count.tolist() == [0, 0]
    assert (points.cpu() == -1).all() and (response.cpu() == 0).all()


@pytest.mark.parametrize("backend,device", [c for c in CASES if c.values[0] != "triton"])
def test_float64_is_exact(backend, device):
    """In fp64 the kernels reproduce the reference's points exactly (ordering included)."""
    require(backend, device)
    R, bld = smooth_maps(3, 40, 45, make_gen(3), device, torch.float64)
    p, r, c = critical_points(R, bld, capacity=50, backend=backend)
    p2, r2, c2 = critical_points_ref(R.cpu(), bld.cpu(), 1.5, 50)
    assert torch.equal(p.cpu(), p2) and torch.equal(c.cpu(), c2)
    torch.testing.assert_close(r.cpu(), r2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend,device", CASES)
def test_noncontiguous_and_bool_buildings(backend, device):
    require(backend, device)
    R, bld = smooth_maps(2, 23, 27, make_gen(5), device)
    out = critical_points(noncontig(R), noncontig(bld.bool()), capacity=30, backend=backend)
    ref = critical_points(R, bld, capacity=30, backend="reference")
    assert_points_match(out, ref, structure_tensor_response(R.double().cpu(), 1.5))


@pytest.mark.parametrize("backend,device", NATIVE_CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_two_times_rule(backend, device, dtype):
    require(backend, device)
    R, bld = smooth_maps(4, 128, 128, make_gen(9), device)
    R = R.to(dtype)
    ref = critical_points_ref(R.double().cpu(), bld.cpu(), 1.5, 64)
    lp = critical_points_ref(R.float(), bld, 1.5, 64)  # the fp32 reference on the same inputs
    out = critical_points(R, bld, capacity=64, backend=backend)
    err = (out[1].double().cpu() - ref[1]).abs().max().item()
    ref_err = (lp[1].to(dtype).double().cpu() - ref[1]).abs().max().item()
    assert err <= 2 * ref_err + 1e-3 * ref[1].abs().max().item()


@pytest.mark.parametrize("backend,device", CASES)
def test_opcheck(backend, device):
    require(backend, device)
    from wifidiff_fast.ops.critical_points import _critical_points_op, _merge_condition_op

    R, bld = smooth_maps(2, 16, 16, make_gen(11), device)
    torch.library.opcheck(_critical_points_op, (R, bld.to(torch.uint8), 1.5, 8, 1e-8, backend))
    points = random_points_ref(bld, 5, make_gen(1))
    S, M = torch.zeros_like(R), torch.zeros_like(R)
    torch.library.opcheck(_merge_condition_op, (R, points, S, M, backend))


def test_bad_inputs_raise_before_launch():
    R, bld = smooth_maps(2, 16, 16, make_gen(0))
    with pytest.raises(ValueError, match="3-D"):
        critical_points(R[0], bld[0])
    with pytest.raises(TypeError, match="dtype"):
        critical_points(R.long(), bld)
    with pytest.raises(ValueError, match="shape"):
        critical_points(R, bld[:, :8])
    with pytest.raises(ValueError, match="empty"):
        critical_points(R[:0], bld[:0])
    with pytest.raises(ValueError, match="capacity"):
        critical_points(R, bld, capacity=0)
    with pytest.raises(ValueError, match="window"):
        critical_points(R[:, :10, :10], bld[:, :10, :10], sigma=1.5)
    with pytest.raises(ValueError, match="sigma"):
        critical_points(R, bld, sigma=0.0)
    with pytest.raises(ValueError, match="points"):
        merge_condition(R, torch.zeros(3, 4, 2, dtype=torch.int64), R, R)
    with pytest.raises(TypeError, match="dtype"):
        merge_condition(R, torch.zeros(2, 4, 2), R, R)


def test_native_checks_mirror_python():
    from wifidiff_fast.ops import _native

    if not _native.status().loaded:
        pytest.skip(f"native extension unavailable: {_native.status().reason.splitlines()[0]}")
    ops = _native.ops()
    R, bld = smooth_maps(2, 16, 16, make_gen(0))
    b8 = bld.to(torch.uint8)
    with pytest.raises(RuntimeError, match="capacity"):
        ops.critical_points(R, b8, 1.5, 0, 1e-8)
    with pytest.raises(RuntimeError, match="window"):
        ops.critical_points(R[:, :5, :5].contiguous(), b8[:, :5, :5].contiguous(), 1.5, 4, 1e-8)
    with pytest.raises(RuntimeError, match="contiguous"):
        ops.critical_points(noncontig(R), b8, 1.5, 4, 1e-8)
    with pytest.raises((TypeError, RuntimeError), match="dtype"):
        ops.critical_points(R, bld, 1.5, 4, 1e-8)
    with pytest.raises(RuntimeError, match="empty"):
        ops.critical_points(R[:0], b8[:0], 1.5, 4, 1e-8)
    with pytest.raises(RuntimeError, match="window"):  # ceil(3σ) beyond int: no overflow to a 3×3
        ops.critical_points(R, b8, 1e9, 4, 1e-8)
    with pytest.raises(ValueError, match="window"):
        critical_points(R, b8, sigma=1e9)


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


# ---- merge_condition ------------------------------------------------------------------------

@pytest.mark.parametrize("backend,device", CASES)
def test_merge_matches_reference(backend, device):
    require(backend, device)
    gen = make_gen(21)
    B, H, W = 3, 19, 23
    R, bld = smooth_maps(B, H, W, gen, device)
    S, M = torch.zeros_like(R), torch.zeros_like(R)
    M.view(-1)[torch.randperm(B * H * W, generator=gen)[:20].to(device)] = 1.0
    S[M > 0] = 0.7
    crit = critical_points(R, bld, capacity=12, backend="reference")[0]
    rnd = random_points_ref(bld, 6, gen)
    points = torch.cat([crit, rnd, rnd[:, :2]], dim=1)  # duplicates and empty (−1) slots
    # a real sample under a boost point: the sample must win
    M[0, points[0, 0, 0].clamp_min(0), points[0, 0, 1].clamp_min(0)] = 1.0
    out = merge_condition(R, points, S, M, backend=backend)
    ref = merge_condition_ref(R.cpu(), points.cpu(), S.cpu(), M.cpu())
    for a, b in zip(out, ref):
        assert a.dtype == R.dtype
        assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("backend,device", CASES)
def test_merge_ignores_off_grid_points(backend, device):
    require(backend, device)
    R, _ = smooth_maps(1, 8, 8, make_gen(2), device)
    S, M = torch.zeros_like(R), torch.zeros_like(R)
    points = torch.tensor([[[-1, -1], [8, 0], [0, 8], [3, -2], [2, 5]]], device=device)
    S_p, M_p = merge_condition(R, points, S, M, backend=backend)
    assert M_p.sum().item() == 1.0 and M_p[0, 2, 5].item() == 1.0
    assert S_p[0, 2, 5].item() == R[0, 2, 5].item()


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_cuda_graph_capture_and_replay(backend):
    require(backend, "cuda")
    R, bld = smooth_maps(4, 96, 96, make_gen(4), "cuda")
    critical_points(R, bld, capacity=32, backend=backend)  # warm-up
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = critical_points(R, bld, capacity=32, backend=backend)
    R2, _ = smooth_maps(4, 96, 96, make_gen(5), "cuda")
    R.copy_(R2)
    graph.replay()
    torch.cuda.synchronize()
    ref = critical_points_ref(R.double().cpu(), bld.cpu(), 1.5, 32)
    assert_points_match(out, ref, structure_tensor_response(R.double().cpu(), 1.5))
