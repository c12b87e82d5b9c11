"""elect: every available backend against the float64 reference (spec: reference/elect.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from opcases import CASES, NATIVE_CASES, interpreted, make_gen, noncontig, require, require_small_if_interpreted
from wifidiff_fast.ops import ElectionParams, elect
from wifidiff_fast.reference import elect_ref
from wifidiff_fast.reference.elect import detect_transmitters, ray_offsets, ring_offsets

SHAPES = {"tiny": (1, 2, 5, 7), "odd": (2, 5, 37, 53), "256": (1, 3, 256, 256),
          "batch64": (1, 64, 48, 48)}


def scene(B, K, H, W, gen, device="cpu", dtype=torch.float32, n_samples=12):
    """Radio-map-like candidates: log-distance peaks + smooth noise of growing size per candidate."""
    rr = torch.arange(H, dtype=torch.float64)[:, None]
    cc = torch.arange(W, dtype=torch.float64)[None, :]
    truth = torch.empty(B, H, W, dtype=torch.float64)
    for b in range(B):
        r0, c0 = torch.rand(2, generator=gen).tolist()
        d = torch.sqrt((rr - r0 * H) ** 2 + (cc - c0 * W) ** 2) + 1.0
        truth[b] = 0.6 - 0.5 * torch.log10(d)
    blocks = torch.rand(B, 1, max(1, H // 6), max(1, W // 6), generator=gen) < 0.2
    bld = F.interpolate(blocks.float(), size=(H, W), mode="nearest")[:, 0]
    base = torch.randn(B, K, max(2, H // 5), max(2, W // 5), generator=gen, dtype=torch.float64)
    smooth = F.interpolate(base, size=(H, W), mode="bilinear", align_corners=False)
    scale = torch.linspace(0.01, 0.2, K, dtype=torch.float64)[None, :, None, None]
    cand = truth[:, None] + scale * smooth + 0.02 * torch.randn(B, K, H, W, generator=gen,
                                                                dtype=torch.float64)
    R_hat = truth + 0.05 * torch.randn(B, H, W, generator=gen, dtype=torch.float64)
    S, M = torch.zeros(B, H, W, dtype=torch.float64), torch.zeros(B, H, W, dtype=torch.float64)
    for b in range(B):
        idx = torch.randperm(H * W, generator=gen)[:n_samples]
        M[b].view(-1)[idx] = 1.0
        S[b].view(-1)[idx] = truth[b].view(-1)[idx]
    alpha = torch.rand(B, generator=gen, dtype=torch.float64) + 0.5
    to = dict(device=device, dtype=dtype)
    return (cand.to(**to), R_hat.to(**to), S.to(**to), M.to(**to), bld.to(device), alpha.to(**to))


def check_against_reference(out, inputs, params, spread_atol=1e-3):
    scores, elected, spread = out
    cand, R_hat, S, M, bld, alpha = inputs
    B, K = cand.shape[:2]
    assert scores.shape == (B, K) and scores.dtype == torch.float32
    assert elected.shape == (B,) and elected.dtype == torch.int64
    assert spread.shape == (B, *cand.shape[2:]) and spread.dtype == torch.float32
    r_scores, r_elected, r_spread = elect_ref(*(t.double().cpu() for t in (cand, R_hat, S, M)),
                                              bld.cpu(), alpha.double().cpu(), params)
    torch.testing.assert_close(scores.double().cpu(), r_scores, rtol=1e-5, atol=1e-6)
    top2 = r_scores.sort(dim=1).values
    clear = (top2[:, 1] - top2[:, 0] > 1e-5) if K > 1 else torch.ones(B, dtype=torch.bool)
    assert torch.equal(elected.cpu()[clear], r_elected[clear])
    torch.testing.assert_close(spread.double().cpu(), r_spread, rtol=1e-5, atol=spread_atol)


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("shape_id", list(SHAPES))
def test_matches_reference(backend, device, shape_id):
    require(backend, device)
    require_small_if_interpreted(backend, device, shape_id)
    inputs = scene(*SHAPES[shape_id], make_gen(len(shape_id)), device)
    params = ElectionParams()
    out = elect(*inputs, params, backend=backend)
    check_against_reference(out, inputs, params)


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("params", [
    ElectionParams(ring_radii=(2, 4, 7), n_angles=12, n_tx=2, n_rays=9, tau_db=2.0, lam=3.0,
                   gamma=0.5, tx_drop_db=20.0),
    ElectionParams(ring_radii=(1,), n_tx=5, n_rays=1, db_span=80.0),
], ids=["custom", "one-ring"])
def test_other_params(backend, device, params):
    require(backend, device)
    inputs = scene(2, 3, 21, 19, make_gen(5), device)
    check_against_reference(elect(*inputs, params, backend=backend), inputs, params)


@pytest.mark.parametrize("backend,device", [c for c in CASES if c.values[0] != "triton"])
def test_float64(backend, device):
    require(backend, device)
    inputs = scene(2, 4, 23, 29, make_gen(8), device, torch.float64)
    check_against_reference(elect(*inputs, backend=backend), inputs, ElectionParams())


@pytest.mark.parametrize("backend,device", CASES)
def test_noncontiguous_and_bool_buildings(backend, device):
    require(backend, device)
    cand, R_hat, S, M, bld, alpha = scene(1, 3, 17, 15, make_gen(9), device)
    out = elect(noncontig(cand), noncontig(R_hat), S, M, noncontig(bld.bool()), alpha,
                backend=backend)
    check_against_reference(out, (cand, R_hat, S, M, bld, alpha), ElectionParams())


@pytest.mark.parametrize("backend,device", CASES)
def test_edge_cases(backend, device):
    """All buildings (no open pixel, no tx), a single candidate, equal candidates (ties → k=0)."""
    require(backend, device)
    cand, R_hat, S, M, bld, alpha = scene(2, 3, 9, 8, make_gen(10), device)
    bld[0] = 1
    out = elect(cand, R_hat, S, M, bld, alpha, backend=backend)
    check_against_reference(out, (cand, R_hat, S, M, bld, alpha), ElectionParams())
    assert (out[2][0] == 0).all()
    same = cand[:, :1].expand(2, 3, 9, 8).contiguous()
    assert torch.equal(elect(same, R_hat, S, M, bld, alpha, backend=backend)[1].cpu(),
                       torch.zeros(2, dtype=torch.int64))
    one = elect(cand[:, :1], R_hat, S, M, bld, alpha, backend=backend)
    assert torch.equal(one[1].cpu(), torch.zeros(2, dtype=torch.int64))


@pytest.mark.parametrize("backend,device", NATIVE_CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_two_times_rule(backend, device, dtype):
    require(backend, device)
    size = 48 if interpreted(backend, device) else 128  # the interpreter: small shapes only
    inputs = scene(2, 16, size, size, make_gen(12), device, dtype)
    params = ElectionParams()
    exact = elect_ref(*(t.double() for t in inputs[:4]), inputs[4], inputs[5].double(), params)
    lp = elect_ref(inputs[0], *(t.float() for t in inputs[1:4]), inputs[4], inputs[5].float(),
                   params)
    out = elect(*inputs, params, backend=backend)
    for i in (0, 2):
        err = (out[i].double() - exact[i]).abs().max().item()
        ref_err = (lp[i].double() - exact[i]).abs().max().item()
        assert err <= 2 * ref_err + 1e-4 * exact[i].abs().max().item(), (i, err, ref_err)


@pytest.mark.parametrize("backend,device", CASES)
def test_opcheck(backend, device):
    require(backend, device)
    from wifidiff_fast.ops.elect import _elect_op

    cand, R_hat, S, M, bld, alpha = scene(1, 2, 8, 8, make_gen(13), device)
    p = ElectionParams()
    torch.library.opcheck(_elect_op, (cand, R_hat, S, M, bld.to(torch.uint8), alpha, p.db_span,
                                      list(p.ring_radii), p.n_angles, p.n_tx, p.tx_drop_db,
                                      p.n_rays, p.tau_db, p.lam, p.gamma, backend))


def test_reference_geometry_and_transmitters():
    """The spec's own pieces: rounding of the offset tables and the transmitter tie rule."""
    p = ElectionParams(ring_radii=(3, 6), n_angles=4, n_rays=4)
    ring = ring_offsets(p)
    assert ring[0].tolist() == [[0, 3], [3, 0], [0, -3], [-3, 0]]
    rays = ray_offsets(p, 3)
    assert rays[1, 1:].tolist() == [[1, 0], [2, 0], [3, 0]]  # θ = π/2 marches down the rows
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 1.0  # a plateau pair: the lower index wins
    x[0, 0, 4, 4] = 0.9
    rows, cols, ok = detect_transmitters(x, torch.ones(1, 1, 5, 5, dtype=torch.bool),
                                         ElectionParams(n_tx=3, tx_drop_db=12.0))
    assert ok[0, 0].tolist() == [True, True, False]
    assert list(zip(rows[0, 0, :2].tolist(), cols[0, 0, :2].tolist())) == [(1, 1), (4, 4)]


def test_bad_inputs_raise_before_launch():
    cand, R_hat, S, M, bld, alpha = scene(1, 2, 8, 8, make_gen(0))
    with pytest.raises(ValueError, match="4-D"):
        elect(cand[0], R_hat, S, M, bld, alpha)
    with pytest.raises(ValueError, match="empty"):
        elect(cand[:, :0], R_hat, S, M, bld, alpha)
    with pytest.raises(ValueError, match="shape"):
        elect(cand, R_hat[:, :4], S, M, bld, alpha)
    with pytest.raises(ValueError, match="alpha"):
        elect(cand, R_hat, S, M, bld, alpha[:0])
    with pytest.raises(TypeError, match="dtype"):
        elect(cand.long(), R_hat, S, M, bld, alpha)
    with pytest.raises(TypeError, match="ElectionParams"):
        elect(cand, R_hat, S, M, bld, alpha, params={"lam": 1.0})
    with pytest.raises(ValueError, match="ring_radii"):
        ElectionParams(ring_radii=(6, 3))
    with pytest.raises(ValueError, match="n_tx"):
        ElectionParams(n_tx=0)


def test_native_checks_mirror_python():
    from wifidiff_fast.ops import _native
    from wifidiff_fast.ops.elect import geometry_tables

    if not _native.status().loaded:
        pytest.skip(f"native extension unavailable: {_native.status().reason.splitlines()[0]}")
    ops = _native.ops()
    cand, R_hat, S, M, bld, alpha = scene(1, 2, 8, 8, make_gen(0))
    b8 = bld.to(torch.uint8)
    ring, drop, rays = geometry_tables(ElectionParams(), 8, 8, torch.device("cpu"))
    args = [cand, R_hat, S, M, b8, alpha, ring, drop, rays, 3, 0.1, 0.1, 1.0, 1.0, 60.0]
    ops.elect(*args)
    with pytest.raises(RuntimeError, match="ray_off"):
        ops.elect(*args[:8], rays[:, :5].contiguous(), *args[9:])
    with pytest.raises(RuntimeError, match="n_tx"):
        ops.elect(*args[:9], 0, *args[10:])
    with pytest.raises(RuntimeError, match="contiguous"):
        ops.elect(noncontig(cand), *args[1:])
    with pytest.raises((TypeError, RuntimeError), match="dtype|must be"):
        ops.elect(cand, R_hat.double(), *args[2:])
    with pytest.raises(RuntimeError, match="empty"):
        ops.elect(cand[:, :0], *args[1:])


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_cuda_graph_capture_and_replay(backend):
    require(backend, "cuda")
    inputs = scene(2, 16, 64, 64, make_gen(14), "cuda")
    elect(*inputs, backend=backend)  # warm-up: compiles, caches the geometry tables
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = elect(*inputs, backend=backend)
    new = scene(2, 16, 64, 64, make_gen(15), "cuda")
    for dst, src in zip(inputs, new):
        dst.copy_(src)
    graph.replay()
    torch.cuda.synchronize()
    check_against_reference(out, inputs, ElectionParams())


def test_score_formula_by_hand():
    """One candidate, no transmitter physics (lam=0): score = L_s + α·D exactly."""
    cand, R_hat, S, M, bld, alpha = scene(1, 1, 6, 6, make_gen(16), dtype=torch.float64)
    s, _, _ = elect(cand, R_hat, S, M, bld, alpha, ElectionParams(lam=0.0), backend="reference")
    open_ = bld == 0
    L_s = (M * (cand[:, 0] - S) ** 2).sum() / max(M.sum().item(), 1.0)
    D = ((cand[:, 0] - R_hat) ** 2)[open_].sum() / max(open_.sum().item(), 1)
    assert math.isclose(s[0, 0].item(), (L_s + alpha[0] * D).item(), rel_tol=1e-6)
