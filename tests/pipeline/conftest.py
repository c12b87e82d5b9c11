"""Fixtures of the pipeline tests: tiny random-weight checkpoints, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipecases import write_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """Tiny checkpoint; the boost map joins the election (as shipped)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt"))


@pytest.fixture(scope="session")
def tiny_ckpt_pure(tmp_path_factory) -> Path:
    """Tiny checkpoint with ``boost_candidate: false``: a diffusion candidate is always elected."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_ckpt_pure"), boost_candidate=False)
