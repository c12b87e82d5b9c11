"""Backend selection precedence, the optional native extension, and ``python -m wifidiff_fast info``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from wifidiff_fast.ops import BackendUnavailable, backend, ddim_step, use_backend
from wifidiff_fast.sampling.schedules import SchedulerConfig, ddim_table


def test_precedence(monkeypatch):
    monkeypatch.delenv("WIFIDIFF_BACKEND", raising=False)
    assert backend.select("ddim_step", "cpu", "reference") == "reference"
    monkeypatch.setenv("WIFIDIFF_BACKEND", "reference")
    assert backend.select("ddim_step", "cpu") == "reference"
    with use_backend("auto"):  # the context beats the environment
        assert backend.select("ddim_step", "cpu") in ("cpp", "reference")
        assert backend.select("ddim_step", "cpu", "reference") == "reference"  # argument wins
    monkeypatch.setenv("WIFIDIFF_BACKEND", "auto")
    assert backend.select("elect", "cpu") in backend.DEFAULT_ORDER["cpu"]


def test_requested_backend_that_cannot_run_raises(monkeypatch):
    monkeypatch.delenv("WIFIDIFF_BACKEND", raising=False)
    with pytest.raises(BackendUnavailable, match="cuda"):
        backend.select("ddim_step", "cpu", "cuda")
    monkeypatch.setenv("WIFIDIFF_BACKEND", "cuda")
    with pytest.raises(BackendUnavailable, match="WIFIDIFF_BACKEND"):
        backend.select("ddim_step", "cpu")
    with pytest.raises(ValueError, match="unknown backend"):
        with use_backend("cobol"):
            pass


def test_disable_native_falls_back_to_reference(monkeypatch):
    monkeypatch.delenv("WIFIDIFF_BACKEND", raising=False)
    monkeypatch.setenv("WIFIDIFF_DISABLE_NATIVE", "1")
    av = backend.availability("cpp", "cpu")
    assert not av.ok and "WIFIDIFF_DISABLE_NATIVE" in av.reason
    assert backend.select("ddim_step", "cpu") == "reference"
    table, _ = ddim_table(SchedulerConfig(), 10)
    x = torch.randn(1, 1, 4, 4)
    out = ddim_step(x, x, table, 0)
    assert out[0].shape == x.shape
    with pytest.raises(BackendUnavailable, match="WIFIDIFF_DISABLE_NATIVE"):
        ddim_step(x, x, table, 0, backend="cpp")


def test_import_builds_nothing_and_prints_nothing():
    code = (
        "import wifidiff_fast, wifidiff_fast.ops, sys; "
        "from wifidiff_fast.ops import _native; "
        "assert _native._status is None; assert 'triton' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_info_cli_reports_backends():
    proc = subprocess.run(
        [sys.executable, "-m", "wifidiff_fast", "info", "--no-build"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("native extension", "reference", "cpp", "triton", "cpu tensors"):
        assert word in proc.stdout


def test_info_cli_with_native_disabled():
    import os

    env = dict(os.environ, WIFIDIFF_DISABLE_NATIVE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "wifidiff_fast", "info"], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "disabled by WIFIDIFF_DISABLE_NATIVE=1" in proc.stdout
    assert "ops on cpu run on: reference" in proc.stdout
