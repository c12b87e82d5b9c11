"""Readable pure-PyTorch versions of every fused op: the specification, test oracle and fallback.

One module per op, named by the op's stem (``ddim_step.py`` defines ``ddim_step_ref``). The set of
fused ops is the set of these modules: :data:`OPS` is read from the directory, so adding an op
starts by adding its specification here (docs/CONTRIBUTING.md, "Adding a fused op").
"""

from pathlib import Path

from .critical_points import critical_points_ref, random_points_ref
from .ddim_step import ddim_step_ref
from .elect import ElectionParams, elect_ref
from .merge_condition import merge_condition_ref

#: The fused ops, one per specification module (derived, never listed by hand).
OPS: tuple[str, ...] = tuple(
    sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
)

__all__ = [
    "OPS",
    "ddim_step_ref",
    "critical_points_ref",
    "random_points_ref",
    "merge_condition_ref",
    "ElectionParams",
    "elect_ref",
]
