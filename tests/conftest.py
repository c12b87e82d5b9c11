"""Test-wide setup.

* ``TRITON_INTERPRET=1`` must be set before any Triton kernel module is imported, so Triton
  kernels run (exactly, slowly) on CPU tensors here.
* Tests marked ``gpu`` skip cleanly, with a reason, when no CUDA device is present.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
