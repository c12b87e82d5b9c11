"""``python -m wifidiff_fast.demo``: its progress (spinner and the estimator's bar) follows the
package-wide rule — on a terminal, off in a pipe or under ``--quiet``, forced by the environment."""

from __future__ import annotations

import io

import pytest

from wifidiff_fast.demo import main
from wifidiff_fast.pipeline.estimator import RadioMapEstimator


@pytest.fixture
def asked(monkeypatch):
    """Records the ``progress`` the demo gives the estimator, then stops the demo (exit 2)."""
    seen = []

    def fake(checkpoint, device="cpu", progress=None):
        seen.append(progress)
        raise ValueError("stop here: the rest needs a real checkpoint")

    monkeypatch.setattr(RadioMapEstimator, "from_pretrained", fake)
    monkeypatch.delenv("WIFIDIFF_PROGRESS", raising=False)
    return seen


def test_progress_off_in_a_pipe_and_when_quiet_forced_by_the_environment(asked, monkeypatch, tmp_path):
    out = ["--out", str(tmp_path)]
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    assert main(out) == 2
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "1")
    assert main(out) == 2
    assert main(out + ["--quiet"]) == 2
    assert main(out + ["--no-progress"]) == 2
    assert asked == [False, True, False, False]
