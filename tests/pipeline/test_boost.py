"""Boost block: critical points on R̂'s corners, S′/M′ merging (samples win), random points."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast import ops
from wifidiff_fast.data.symmetry import dihedral, dihedral_inverse
from wifidiff_fast.models.checkpoint import build_networks
from wifidiff_fast.models.presets import preset
from wifidiff_fast.pipeline.boost import boost, boost_condition, rough_map
from wifidiff_fast.pipeline.params import BoostParams
from wifidiff_fast.reference.critical_points import random_points_ref

from pipecases import layout

H = W = 64
CORNER = (30, 40)

pytestmark = pytest.mark.usefixtures("one_thread")


def corner_map() -> torch.Tensor:
    """R̂ = +0.5 in the quadrant below-right of CORNER, −0.5 elsewhere: one corner, two edges."""
    R = torch.full((1, H, W), -0.5)
    R[0, CORNER[0] :, CORNER[1] :] = 0.5
    return R


def _valid(out):
    pts = out.points[0, : int(out.n_critical[0])]
    return pts[pts[:, 0] >= 0]


@pytest.mark.parametrize(
    "ops_kw",
    [{}, {"critical_points": ops.critical_points, "merge_condition": ops.merge_condition}],
    ids=["reference", "ops"],
)
def test_critical_points_land_on_the_corner(ops_kw):
    R = corner_map()
    B = torch.zeros(1, H, W)
    params = BoostParams(n_critical=4, n_random=0)
    out = boost_condition(R, B, torch.zeros_like(R), torch.zeros_like(R), params, None, **ops_kw)
    crit = _valid(out)
    assert int(out.n_critical[0]) >= 1
    assert out.points.shape == (1, 4, 2)
    best = crit[0].tolist()
    assert abs(best[0] - CORNER[0]) <= 2 and abs(best[1] - CORNER[1]) <= 2, best
    # every detected point is near the corner: straight edges and flat areas have λ2 = 0
    dist = (crit - torch.tensor(CORNER)).abs().max(dim=1).values
    assert (dist <= 4).all(), crit.tolist()
    # S′ carries R̂ at the critical points, M′ marks them
    for r, c in crit.tolist():
        assert out.M_prime[0, r, c] == 1 and out.S_prime[0, r, c] == R[0, r, c]


def test_flat_map_has_no_critical_points():
    R = torch.zeros(1, H, W)
    out = boost_condition(R, torch.zeros(1, H, W), R, R, BoostParams(n_critical=8, n_random=0), None)
    assert int(out.n_critical[0]) == 0 and (out.points == -1).all()
    assert (out.M_prime == 0).all() and (out.S_prime == 0).all()


def test_critical_points_avoid_buildings():
    R = corner_map()
    B = torch.zeros(1, H, W)
    B[0, CORNER[0] - 3 : CORNER[0] + 4, CORNER[1] - 3 : CORNER[1] + 4] = 1  # the corner is a building
    out = boost_condition(
        R, B, torch.zeros_like(R), torch.zeros_like(R), BoostParams(n_critical=8, n_random=0), None
    )
    for r, c in _valid(out).tolist():
        assert B[0, r, c] == 0


def test_real_samples_win_over_boost_points():
    R = corner_map()
    B = torch.zeros(1, H, W)
    params = BoostParams(n_critical=4, n_random=16)
    probe = boost_condition(
        R, B, torch.zeros_like(R), torch.zeros_like(R), params, torch.Generator().manual_seed(0)
    )
    r0, c0 = _valid(probe)[0].tolist()
    S, M = torch.zeros(1, H, W), torch.zeros(1, H, W)
    S[0, r0, c0], M[0, r0, c0] = -0.9, 1.0  # a real sample exactly on the critical point
    S[0, 5, 5], M[0, 5, 5] = 0.3, 1.0
    out = boost_condition(R, B, S, M, params, torch.Generator().manual_seed(0))
    assert out.S_prime[0, r0, c0] == -0.9 and out.S_prime[0, 5, 5] == 0.3
    assert out.M_prime[0, r0, c0] == 1 and out.M_prime[0, 5, 5] == 1
    # everywhere else S′ is R̂ where M′ is set and 0 elsewhere
    other = M[0] == 0
    expect = torch.where(out.M_prime[0] > 0, R[0], torch.zeros_like(R[0]))
    assert torch.equal(out.S_prime[0][other], expect[other])
    # M′ = real samples ∪ boost points
    marked = set(map(tuple, out.points[0][out.points[0, :, 0] >= 0].tolist())) | {(r0, c0), (5, 5)}
    assert int(out.M_prime.sum()) == len(marked)


def test_random_points_never_on_buildings_and_are_seeded():
    g = torch.Generator().manual_seed(0)
    B = (torch.rand(3, 40, 40, generator=g) < 0.9).float()  # 90 % buildings
    B[2] = 1
    B[2, 7, 9] = 0  # a single open pixel: repeated
    pts = random_points_ref(B, 32, torch.Generator().manual_seed(1))
    assert pts.shape == (3, 32, 2) and pts.dtype == torch.int64
    for b in range(3):
        assert (B[b][pts[b, :, 0], pts[b, :, 1]] == 0).all()
    assert len(set(map(tuple, pts[0].tolist()))) == 32  # distinct while enough pixels are open
    assert (pts[2] == torch.tensor([7, 9])).all()
    again = random_points_ref(B, 32, torch.Generator().manual_seed(1))
    assert torch.equal(pts, again)
    assert not torch.equal(pts, random_points_ref(B, 32, torch.Generator().manual_seed(2)))


def test_boost_end_to_end_points_are_open_and_rough_map_bounded():
    torch.manual_seed(0)
    net = build_networks(preset("tiny")).boost.eval()
    g = torch.Generator().manual_seed(3)
    B = (torch.rand(2, 48, 48, generator=g) < 0.3).float()
    M = ((torch.rand(2, 48, 48, generator=g) < 0.02).float()) * (1 - B)
    S = M * (torch.rand(2, 48, 48, generator=g) * 2 - 1)
    with torch.no_grad():
        R = rough_map(net, B, S, M)
        out = boost(net, B, S, M, BoostParams(n_critical=8, n_random=8), torch.Generator().manual_seed(0))
    assert R.shape == (2, 48, 48) and R.abs().max() <= 1
    assert torch.equal(out.R_hat, R)
    valid = out.points[..., 0] >= 0
    for b in range(2):
        p = out.points[b][valid[b]]
        assert (B[b][p[:, 0], p[:, 1]] == 0).all()
        assert (out.M_prime[b] >= M[b]).all() and torch.equal(out.S_prime[b][M[b] > 0], S[b][M[b] > 0])


def test_tta_boost_map_is_the_mean_over_the_eight_symmetries_and_equivariant():
    torch.manual_seed(0)
    nets = build_networks(preset("tiny"))
    b = torch.from_numpy(layout(32, 48, seed=3)).float()[None]  # non-square: both shape groups
    S = torch.zeros_like(b)
    M = torch.zeros_like(b)
    S[0, 1, 2], M[0, 1, 2] = 0.3, 1.0
    S[0, 30, 40], M[0, 30, 40] = -0.2, 1.0
    with torch.no_grad():
        tta = rough_map(nets.boost, b, S, M, tta=True)
        manual = torch.stack(
            [
                dihedral_inverse(rough_map(nets.boost, dihedral(b, k), dihedral(S, k), dihedral(M, k)), k)
                for k in range(8)
            ]
        ).mean(0)
        torch.testing.assert_close(tta, manual, rtol=1e-5, atol=1e-6)
        # averaging over the group makes R̂ equivariant: transforming the input transforms R̂
        turned = rough_map(nets.boost, dihedral(b, 5), dihedral(S, 5), dihedral(M, 5), tta=True)
        torch.testing.assert_close(turned, dihedral(tta, 5), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(rough_map(nets.boost, b, S, M), tta)  # it is not the plain map
