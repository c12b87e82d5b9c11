"""Test-wide setup.

* ``TRITON_INTERPRET=1`` must be set before any Triton kernel module is imported, so Triton
  kernels run (exactly, slowly) on CPU tensors here.
* Tests marked ``gpu`` skip cleanly, with a reason, when no CUDA device is present.
* ``WIFIDIFF_REQUIRE_NATIVE=1`` (CI): the C++ extension must build and load (and carry its CUDA
  kernels when a GPU is visible), or the session stops with the build error — otherwise every
  C++ case would skip and a broken build would pass unnoticed.
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


def pytest_sessionstart(session):
    from wifidiff_fast import _env

    if not _env.native_required():
        return
    if _env.native_disabled():
        pytest.exit("WIFIDIFF_REQUIRE_NATIVE=1 contradicts WIFIDIFF_DISABLE_NATIVE=1", returncode=4)
    from wifidiff_fast.ops import _native

    st = _native.status()
    if not st.loaded:
        pytest.exit(
            f"WIFIDIFF_REQUIRE_NATIVE=1 but the native extension is unavailable:\n{st.reason}", returncode=1
        )
    if torch.cuda.is_available() and not st.with_cuda:
        pytest.exit(
            f"WIFIDIFF_REQUIRE_NATIVE=1 and a GPU is visible, but the extension was built "
            f"without its CUDA kernels: {st.reason}",
            returncode=1,
        )
