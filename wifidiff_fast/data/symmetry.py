"""The 8 symmetries of the square (dihedral group D4) on the last two dims of a tensor.

Used for training augmentation and for the boost block's test-time averaging; propagation over a
layout does not depend on the orientation of the grid, so both are physically neutral.
"""

from __future__ import annotations

import torch


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` ∈ 0..7: an optional horizontal flip (k ≥ 4), then ``k mod 4`` quarter turns."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def dihedral_inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    """Undo :func:`dihedral` with the same ``k``."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x
