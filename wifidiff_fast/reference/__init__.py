"""Readable pure-PyTorch versions of every fused op: the specification, test oracle and fallback."""

from .critical_points import critical_points_ref, merge_condition_ref, random_points_ref
from .ddim import ddim_step_ref
from .elect import ElectionParams, elect_ref

__all__ = ["ddim_step_ref", "critical_points_ref", "random_points_ref", "merge_condition_ref",
           "ElectionParams", "elect_ref"]
