"""ddim_step: every available backend against the float64 reference (DESIGN §2b)."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.ops import ddim_step
from wifidiff_fast.reference import ddim_step_ref
from wifidiff_fast.sampling.schedules import SchedulerConfig, ddim_table


@pytest.fixture
def gen():
    return make_gen()

from opcases import CASES, NATIVE_CASES, make_gen, noncontig, require, require_small_if_interpreted

SHAPES = {
    "tiny": (1, 1, 3, 5),
    "odd": (3, 1, 37, 53),
    "256": (2, 1, 256, 256),
    "batch64": (64, 1, 64, 64),
}


def _inputs(shape, device, gen, dtype=torch.float32, eta=0.5, steps=10):
    table, _ = ddim_table(SchedulerConfig(), steps, eta=eta, device=device)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device)
    eps = torch.randn(shape, generator=gen, dtype=torch.float64).to(device)
    z = torch.randn(shape, generator=gen, dtype=torch.float64).to(device)
    return x.to(dtype), eps.to(dtype), z.to(dtype), table


def _ref64(x, eps, table, step, z, clip):
    return ddim_step_ref(x.double(), eps.double(), table.double(), step,
                         None if z is None else z.double(), clip)


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("shape_id", list(SHAPES))
@pytest.mark.parametrize("clip,noise", [(True, True), (False, False)], ids=["clip-noise", "noclip"])
def test_matches_reference(backend, device, shape_id, clip, noise, gen):
    require(backend, device)
    require_small_if_interpreted(backend, device, shape_id)
    x, eps, z, table = _inputs(SHAPES[shape_id], device, gen)
    z = z if noise else None
    for step in (0, 4, torch.tensor(9, device=device)):
        x_prev, x0 = ddim_step(x, eps, table, step, noise=z, clip_sample=clip, backend=backend)
        assert x_prev.shape == x.shape and x_prev.dtype == x.dtype and x_prev.device == x.device
        r_prev, r_x0 = _ref64(x, eps, table, step, z, clip)
        # the last step divides by sqrt(ᾱ_t) ≈ 0.07 on an unclipped x0: allow fp32 round-off there
        torch.testing.assert_close(x_prev.double(), r_prev, rtol=1e-5, atol=2e-5)
        torch.testing.assert_close(x0.double(), r_x0, rtol=1e-5, atol=2e-5)


def _known_raster(groups, shape, device, gen, dtype=torch.float32, density=0.2):
    """A condition raster S′ (values in [-1, 1]) and its mask M′ ([G, C, H, W], ~density set)."""
    known = (torch.rand((groups, *shape[1:]), generator=gen, dtype=torch.float64) * 2 - 1)
    mask = torch.rand((groups, *shape[1:]), generator=gen) < density
    return known.to(device, dtype), mask.to(device)


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("shape_id,groups", [("tiny", 1), ("odd", 3), ("odd", 1), ("batch64", 4)])
def test_known_sample_write_matches_reference(backend, device, shape_id, groups, gen):
    require(backend, device)
    require_small_if_interpreted(backend, device, shape_id)
    x, eps, z, table = _inputs(SHAPES[shape_id], device, gen)
    known, mask = _known_raster(groups, x.shape, device, gen)
    for step in (0, 5, 9):
        x_prev, x0 = ddim_step(x, eps, table, step, noise=z, known=known, known_mask=mask,
                               backend=backend)
        r_prev, r_x0 = ddim_step_ref(x.double(), eps.double(), table.double(), step, z.double(),
                                     True, 1.0, known.double(), mask)
        torch.testing.assert_close(x_prev.double(), r_prev, rtol=1e-5, atol=2e-5)
        torch.testing.assert_close(x0.double(), r_x0, rtol=1e-5, atol=2e-5)
        # the spec itself: x0 is exactly the known value at every set pixel of the candidate's map
        per = x.shape[0] // groups
        written = mask.repeat_interleave(per, 0)
        assert torch.equal(x0[written], known.repeat_interleave(per, 0)[written])
        if step == 9:  # the last DDIM step returns x0: candidates pass through the known values
            torch.testing.assert_close(x_prev[written], x0[written], rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend,device", CASES)
def test_known_sample_write_groups_follow_the_candidate_layout(backend, device, gen):
    """K = N // G consecutive candidates share a raster row (repeat_interleave, not repeat)."""
    require(backend, device)
    x, eps, _, table = _inputs((6, 1, 5, 7), device, gen)
    known = torch.tensor([-0.5, 0.25, 0.75], device=device).view(3, 1, 1, 1).expand(3, 1, 5, 7)
    mask = torch.ones(3, 1, 5, 7, dtype=torch.bool, device=device)
    _, x0 = ddim_step(x, eps, table, 2, known=known.contiguous(), known_mask=mask, backend=backend)
    assert x0.amin(dim=(1, 2, 3)).tolist() == [-0.5, -0.5, 0.25, 0.25, 0.75, 0.75]
    assert x0.amax(dim=(1, 2, 3)).tolist() == [-0.5, -0.5, 0.25, 0.25, 0.75, 0.75]


@pytest.mark.parametrize("backend,device", CASES)
def test_float64_is_exact_enough(backend, device, gen):
    require(backend, device)
    x, eps, z, table = _inputs((2, 1, 9, 11), device, gen, dtype=torch.float64)
    x_prev, x0 = ddim_step(x, eps, table, 3, noise=z, backend=backend)
    r_prev, r_x0 = _ref64(x, eps, table, 3, z, True)
    assert x_prev.dtype == torch.float64
    torch.testing.assert_close(x_prev, r_prev, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x0, r_x0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend,device", CASES)
def test_noncontiguous_inputs(backend, device, gen):
    require(backend, device)
    x, eps, z, table = _inputs((2, 1, 13, 17), device, gen)
    out = ddim_step(noncontig(x), noncontig(eps), table, 2, noise=noncontig(z), backend=backend)
    ref = ddim_step(x, eps, table, 2, noise=z, backend="reference")
    for a, b in zip(out, ref):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend,device", NATIVE_CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_two_times_rule(backend, device, dtype, gen):
    """kernel error ≤ 2 × the same-precision reference's error + atol (flash-attention's rule)."""
    require(backend, device)
    x, eps, z, table = _inputs((4, 1, 256, 256), device, gen, dtype=dtype)
    r_prev, r_x0 = _ref64(x, eps, table, 3, z, True)
    lp_prev, lp_x0 = ddim_step_ref(x, eps, table, 3, z)
    out_prev, out_x0 = ddim_step(x, eps, table, 3, noise=z, backend=backend)
    assert out_prev.dtype == dtype
    for out, lp, ref in ((out_prev, lp_prev, r_prev), (out_x0, lp_x0, r_x0)):
        err = (out.double() - ref).abs().max().item()
        ref_err = (lp.double() - ref).abs().max().item()
        assert err <= 2 * ref_err + 1e-3, (err, ref_err)


@pytest.mark.parametrize("backend,device", CASES)
def test_opcheck(backend, device, gen):
    require(backend, device)
    from wifidiff_fast.ops.ddim_step import _ddim_step_op

    x, eps, z, table = _inputs((2, 1, 8, 8), device, gen)
    step = torch.tensor(1)
    known, mask = _known_raster(1, x.shape, device, gen)
    torch.library.opcheck(_ddim_step_op, (x, eps, table, step, z, True, 1.0, None, None, backend))
    torch.library.opcheck(_ddim_step_op, (x, eps, table, step, None, False, 1.0, None, None,
                                          backend))
    torch.library.opcheck(_ddim_step_op, (x, eps, table, step, z, True, 1.0, known,
                                          mask.to(torch.uint8), backend))


@pytest.mark.parametrize("backend,device", [c for c in CASES if c.values[0] != "reference"])
def test_out_of_range_device_step_poisons_instead_of_reading_out_of_bounds(backend, device, gen):
    require(backend, device)
    if backend == "cpp":
        pytest.skip("a CPU step is read on the host and range-checked with an error instead")
    x, eps, z, table = _inputs((1, 1, 4, 4), device, gen)
    x_prev, _ = ddim_step(x, eps, table, torch.tensor(99, device=device), backend=backend)
    assert torch.isnan(x_prev).all()


def test_bad_inputs_raise_before_launch(gen):
    x, eps, z, table = _inputs((2, 1, 4, 4), "cpu", gen)
    with pytest.raises(TypeError, match="dtype"):
        ddim_step(x.long(), eps, table, 0)
    with pytest.raises(TypeError, match="eps"):
        ddim_step(x, eps.double(), table, 0)
    with pytest.raises(ValueError, match="shape"):
        ddim_step(x, eps[:1], table, 0)
    with pytest.raises(ValueError, match="empty"):
        ddim_step(x[:0], eps[:0], table, 0)
    with pytest.raises(ValueError, match=r"\[S, 5\]"):
        ddim_step(x, eps, table[:, :4], 0)
    with pytest.raises(ValueError, match="out of range"):
        ddim_step(x, eps, table, 10)
    with pytest.raises(TypeError, match="step"):
        ddim_step(x, eps, table, 1.5)
    with pytest.raises(ValueError, match="0-D"):
        ddim_step(x, eps, table, torch.tensor([1]))
    with pytest.raises(ValueError, match="clip_range"):
        ddim_step(x, eps, table, 0, clip_range=0.0)
    with pytest.raises(ValueError, match="unknown backend"):
        ddim_step(x, eps, table, 0, backend="fortran")
    known, mask = _known_raster(1, x.shape, "cpu", gen)
    with pytest.raises(ValueError, match="together"):
        ddim_step(x, eps, table, 0, known=known)
    with pytest.raises(ValueError, match="G dividing 2"):
        ddim_step(x, eps, table, 0, known=known[:, :, :3], known_mask=mask[:, :, :3])
    with pytest.raises(ValueError, match="G dividing 2"):
        ddim_step(x, eps, table, 0, known=torch.cat([known] * 3), known_mask=torch.cat([mask] * 3))
    with pytest.raises(TypeError, match="known"):
        ddim_step(x, eps, table, 0, known=known.double(), known_mask=mask)
    with pytest.raises(ValueError, match="known_mask"):
        ddim_step(x, eps, table, 0, known=known, known_mask=mask[..., :2])


def test_native_checks_mirror_python(gen):
    """Direct calls of the C++ op hit TORCH_CHECKs, never a crash."""
    from wifidiff_fast.ops import _native

    if not _native.status().loaded:
        pytest.skip(f"native extension unavailable: {_native.status().reason.splitlines()[0]}")
    ops = _native.ops()
    x, eps, z, table = _inputs((2, 1, 4, 4), "cpu", gen)
    step = torch.tensor(0)
    with pytest.raises(RuntimeError, match="contiguous"):
        ops.ddim_step(noncontig(x), noncontig(eps), table, step, None, True, 1.0, None, None)
    with pytest.raises(RuntimeError, match="out of range"):
        ops.ddim_step(x, eps, table, torch.tensor(10), None, True, 1.0, None, None)
    with pytest.raises(RuntimeError, match="empty"):
        ops.ddim_step(x[:0], eps[:0], table, step, None, True, 1.0, None, None)
    with pytest.raises((TypeError, RuntimeError), match="dtype"):
        ops.ddim_step(x, eps.double(), table, step, None, True, 1.0, None, None)
    known, mask = _known_raster(1, x.shape, "cpu", gen)
    mask = mask.to(torch.uint8)
    with pytest.raises(RuntimeError, match="together"):
        ops.ddim_step(x, eps, table, step, None, True, 1.0, known, None)
    with pytest.raises(RuntimeError, match="G dividing"):
        ops.ddim_step(x, eps, table, step, None, True, 1.0, torch.cat([known] * 3),
                      torch.cat([mask] * 3))
    with pytest.raises((TypeError, RuntimeError), match="dtype"):
        ops.ddim_step(x, eps, table, step, None, True, 1.0, known, mask.bool())
    with pytest.raises(RuntimeError, match="shape"):
        ops.ddim_step(x, eps, table, step, None, True, 1.0, known, mask[..., :2].contiguous())


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_cuda_graph_capture_and_replay(backend, gen):
    require(backend, "cuda")
    x, eps, z, table = _inputs((8, 1, 64, 64), "cuda", gen)
    step = torch.zeros((), dtype=torch.int64, device="cuda")
    ddim_step(x, eps, table, step, noise=z, backend=backend)  # warm-up (compiles, loads)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out_prev, out_x0 = ddim_step(x, eps, table, step, noise=z, backend=backend)
    for s in (3, 7):
        step.fill_(s)
        graph.replay()
        torch.cuda.synchronize()
        r_prev, r_x0 = _ref64(x, eps, table, s, z, True)
        torch.testing.assert_close(out_prev.double(), r_prev, rtol=1e-5, atol=2e-5)
