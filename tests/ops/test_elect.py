"""elect: every available backend against the float64 reference (tests/ops/opharness.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wifidiff_fast.ops import ElectionParams, elect
from wifidiff_fast.ops.elect import _elect_op, geometry_tables
from wifidiff_fast.reference import elect_ref
from wifidiff_fast.reference.elect import detect_transmitters, ray_offsets, ring_offsets

from opcases import CASES, make_gen, noncontig, require
from opharness import OpTester

CUSTOM = ElectionParams(
    ring_radii=(2, 4, 7), n_angles=12, n_tx=2, n_rays=9, tau_db=2.0, lam=3.0, gamma=0.5, tx_drop_db=20.0
)
ONE_RING = ElectionParams(ring_radii=(1,), n_tx=5, n_rays=1, db_span=80.0)


def scene(B, K, H, W, gen, device="cpu", dtype=torch.float32, n_samples=12):
    """Radio-map-like candidates: log-distance peaks + smooth noise of growing size per candidate."""
    rr, cc = torch.arange(H, dtype=torch.float64)[:, None], torch.arange(W, dtype=torch.float64)[None, :]
    truth = torch.empty(B, H, W, dtype=torch.float64)
    for b in range(B):
        r0, c0 = torch.rand(2, generator=gen).tolist()
        truth[b] = 0.6 - 0.5 * torch.log10(torch.sqrt((rr - r0 * H) ** 2 + (cc - c0 * W) ** 2) + 1.0)
    blocks = torch.rand(B, 1, max(1, H // 6), max(1, W // 6), generator=gen) < 0.2
    bld = F.interpolate(blocks.float(), size=(H, W), mode="nearest")[:, 0]
    base = torch.randn(B, K, max(2, H // 5), max(2, W // 5), generator=gen, dtype=torch.float64)
    smooth = F.interpolate(base, size=(H, W), mode="bilinear", align_corners=False)
    scale = torch.linspace(0.01, 0.2, K, dtype=torch.float64)[None, :, None, None]
    cand = (
        truth[:, None] + scale * smooth + 0.02 * torch.randn(B, K, H, W, generator=gen, dtype=torch.float64)
    )
    R_hat = truth + 0.05 * torch.randn(B, H, W, generator=gen, dtype=torch.float64)
    S, M = torch.zeros(B, H, W, dtype=torch.float64), torch.zeros(B, H, W, dtype=torch.float64)
    for b in range(B):
        idx = torch.randperm(H * W, generator=gen)[:n_samples]
        M[b].view(-1)[idx] = 1.0
        S[b].view(-1)[idx] = truth[b].view(-1)[idx]
    alpha = torch.rand(B, generator=gen, dtype=torch.float64) + 0.5
    return (*(t.to(device, dtype) for t in (cand, R_hat, S, M)), bld.to(device), alpha.to(device, dtype))


class TestElect(OpTester):
    op, ref, custom_op, native_name = staticmethod(elect), staticmethod(elect_ref), _elect_op, "elect"
    # (B, K, H, W, params, all-buildings map 0)
    cases = {
        "tiny": (1, 2, 5, 7, ElectionParams(), False),
        "odd": (2, 5, 37, 53, ElectionParams(), False),
        "256": (1, 3, 256, 256, ElectionParams(), False),
        "batch64": (1, 64, 48, 48, ElectionParams(), False),
        "custom": (2, 3, 21, 19, CUSTOM, False),
        "one-ring": (2, 3, 21, 19, ONE_RING, False),
        "no-open-pixel": (2, 3, 9, 8, ElectionParams(), True),
    }
    other_inputs = {
        "lp": (2, 16, 128, 128, ElectionParams(), False),
        "lp-interpreted": (2, 16, 48, 48, ElectionParams(), False),
    }
    float64_skip = ("triton",)
    lp_outputs, lp_atol_rel = (0, 2), 1e-4

    def inputs(self, case, device, dtype, gen):
        B, K, H, W, params, no_open = case
        cand, R_hat, S, M, bld, alpha = scene(B, K, H, W, gen, device, dtype)
        if no_open:
            bld[0] = 1
        return cand, R_hat, S, M, bld, alpha, params

    def check(self, out, inputs_ref, inputs):
        (scores, elected, spread), (r_scores, r_elected, r_spread) = out, inputs_ref
        B, K, H, W = inputs[0].shape
        assert scores.shape == (B, K) and scores.dtype == torch.float32 and elected.dtype == torch.int64
        assert spread.shape == (B, H, W) and spread.dtype == torch.float32
        torch.testing.assert_close(scores.double().cpu(), r_scores, rtol=1e-5, atol=1e-6)
        top2 = r_scores.sort(dim=1).values
        clear = (top2[:, 1] - top2[:, 0] > 1e-5) if K > 1 else torch.ones(B, dtype=torch.bool)
        assert torch.equal(elected.cpu()[clear], r_elected[clear])
        torch.testing.assert_close(spread.double().cpu(), r_spread, rtol=1e-5, atol=1e-3)

    check_float64 = check  # fixed float32 outputs: float64 inputs meet the same tolerance

    def low_precision_reference(self, inputs):
        cand, *maps, bld, alpha, params = inputs
        return elect_ref(cand, *(t.float() for t in maps), bld, alpha.float(), params)

    def opcheck_args(self, device, backend):
        cand, R_hat, S, M, bld, alpha, p = self.make("tiny", device)
        return [
            (
                cand,
                R_hat,
                S,
                M,
                bld.to(torch.uint8),
                alpha,
                p.db_span,
                list(p.ring_radii),
                p.n_angles,
                p.n_tx,
                p.tx_drop_db,
                p.n_rays,
                p.tau_db,
                p.lam,
                p.gamma,
                backend,
            )
        ]

    def bad_calls(self):
        cand, R_hat, S, M, bld, alpha, _ = self.make("tiny", "cpu")
        yield (cand[0], R_hat, S, M, bld, alpha), {}, ValueError, "4-D"
        yield (cand[:, :0], R_hat, S, M, bld, alpha), {}, ValueError, "empty"
        yield (cand, R_hat[:, :4], S, M, bld, alpha), {}, ValueError, "shape"
        yield (cand, R_hat, S, M, bld, alpha[:0]), {}, ValueError, "alpha"
        yield (cand.long(), R_hat, S, M, bld, alpha), {}, TypeError, "dtype"
        yield (cand, R_hat, S, M, bld, alpha), {"params": {"lam": 1.0}}, TypeError, "ElectionParams"

    def test_bad_election_params(self):
        for kw, match in (({"ring_radii": (6, 3)}, "ring_radii"), ({"n_tx": 0}, "n_tx")):
            with pytest.raises(ValueError, match=match):
                ElectionParams(**kw)

    def native_bad_calls(self):
        cand, R_hat, S, M, bld, alpha, _ = self.make("tiny", "cpu")
        ring, drop, rays = geometry_tables(ElectionParams(), *cand.shape[2:], torch.device("cpu"))
        args = [cand, R_hat, S, M, bld.to(torch.uint8), alpha, ring, drop, rays, 3, 0.1, 0.1, 1.0, 1.0, 60.0]
        yield (*args[:8], rays[:, :5].contiguous(), *args[9:]), RuntimeError, "ray_off"
        yield (*args[:9], 0, *args[10:]), RuntimeError, "n_tx"
        yield (noncontig(cand), *args[1:]), RuntimeError, "contiguous"
        yield (cand, R_hat.double(), *args[2:]), (TypeError, RuntimeError), "dtype|must be"
        yield (cand[:, :0], *args[1:]), RuntimeError, "empty"


@pytest.mark.parametrize("backend,device", CASES)
def test_ties_and_a_single_candidate_elect_the_first(backend, device):
    require(backend, device)
    cand, R_hat, S, M, bld, alpha, _ = TestElect().make("no-open-pixel", device)
    assert (
        elect(cand, R_hat, S, M, bld, alpha, backend=backend)[2][0] == 0
    ).all()  # no open pixel: no spread
    same = cand[:, :1].expand_as(cand).contiguous()
    for c in (same, cand[:, :1]):
        assert elect(c, R_hat, S, M, bld, alpha, backend=backend)[1].tolist() == [0, 0]


def test_reference_geometry_and_transmitters():
    """The spec's own pieces: rounding of the offset tables and the transmitter tie rule."""
    p = ElectionParams(ring_radii=(3, 6), n_angles=4, n_rays=4)
    assert ring_offsets(p)[0].tolist() == [[0, 3], [3, 0], [0, -3], [-3, 0]]
    assert ray_offsets(p, 3)[1, 1:].tolist() == [[1, 0], [2, 0], [3, 0]]  # θ = π/2 marches down the rows
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 1.0  # a plateau pair: the lower index wins
    x[0, 0, 4, 4] = 0.9
    rows, cols, ok = detect_transmitters(
        x, torch.ones(1, 1, 5, 5, dtype=torch.bool), ElectionParams(n_tx=3, tx_drop_db=12.0)
    )
    assert ok[0, 0].tolist() == [True, True, False]
    assert list(zip(rows[0, 0, :2].tolist(), cols[0, 0, :2].tolist())) == [(1, 1), (4, 4)]


def test_score_formula_by_hand():
    """One candidate, no transmitter physics (lam=0): score = L_s + α·D exactly."""
    cand, R_hat, S, M, bld, alpha = scene(1, 1, 6, 6, make_gen(16), dtype=torch.float64)
    s, _, _ = elect(cand, R_hat, S, M, bld, alpha, ElectionParams(lam=0.0), backend="reference")
    open_ = bld == 0
    L_s = (M * (cand[:, 0] - S) ** 2).sum() / max(M.sum().item(), 1.0)
    D = ((cand[:, 0] - R_hat) ** 2)[open_].sum() / max(open_.sum().item(), 1)
    assert math.isclose(s[0, 0].item(), (L_s + alpha[0] * D).item(), rel_tol=1e-6)
