"""Public fused ops (``torch.library`` custom ops), each with a backend chosen in :mod:`.backend`.

``ddim_step``, ``critical_points``, ``merge_condition`` and ``elect`` run on the C++ CPU
extension, the CUDA extension, Triton or the pure-PyTorch reference; they all validate their
inputs in Python first. Importing this package builds nothing and touches no GPU.
"""

from ..reference.elect import ElectionParams
from .backend import BackendUnavailable, availability, select, use_backend
from .critical_points import critical_points
from .ddim_step import ddim_step
from .elect import elect
from .merge_condition import merge_condition

__all__ = [
    "ddim_step",
    "critical_points",
    "merge_condition",
    "elect",
    "ElectionParams",
    "use_backend",
    "select",
    "availability",
    "BackendUnavailable",
]
