"""Test-wide setup.

* ``TRITON_INTERPRET=1`` must be set before any Triton kernel module is imported, so Triton
  kernels run (exactly, slowly) on CPU tensors here.
* Tests marked ``gpu`` skip cleanly, with a reason, when no CUDA device is present.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    on a busy 2-core machine torch's OpenMP threads fighting other jobs made small-tensor tests
    up to 10× slower. Restored after the module."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
