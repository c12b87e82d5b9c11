"""NVTX ranges (no-op fallback), CUDA-event/wall-clock stage timings and progress bars."""

from __future__ import annotations

import argparse
import io

import pytest
import torch

from wifidiff_fast.runtime import nvtx, progress
from wifidiff_fast.runtime.timing import StageTimer


@pytest.fixture
def recorded(monkeypatch):
    events = []
    monkeypatch.setattr(
        nvtx, "_markers", lambda: (lambda m: events.append(("push", m)), lambda: events.append(("pop", None)))
    )
    yield events
    nvtx.enable(False)


def test_ranges_are_named_by_stage_and_backend(recorded):
    nvtx.enable(True)
    with nvtx.annotate("generation", "aot"):
        with nvtx.annotate("boost"):
            pass
    assert recorded == [
        ("push", "wifidiff/generation[aot]"),
        ("push", "wifidiff/boost"),
        ("pop", None),
        ("pop", None),
    ]


def test_disabled_ranges_cost_nothing_and_pop_on_error(recorded):
    with nvtx.annotate("boost", "eager"):
        pass
    assert recorded == []
    nvtx.enable(True)
    with pytest.raises(KeyError):
        with nvtx.annotate("election", "graph"):
            raise KeyError("x")
    assert recorded == [("push", "wifidiff/election[graph]"), ("pop", None)]


def test_without_any_marker_library_annotate_is_a_no_op(monkeypatch):
    monkeypatch.setattr(nvtx, "_markers", lambda: None)
    nvtx.enable(True)
    try:
        with nvtx.annotate("boost", "aot"):
            value = 1
    finally:
        nvtx.enable(False)
    assert value == 1


def test_stage_timer_sums_repeated_stages_on_the_cpu(recorded):
    nvtx.enable(True)
    timer = StageTimer("cpu", "aot")
    for _ in range(2):
        with timer.stage("generation"):
            torch.ones(10).sum()
    out = timer.result()
    assert set(out) == {"generation", "total"} and 0 < out["generation"] <= out["total"]
    assert recorded.count(("push", "wifidiff/generation[aot]")) == 2


@pytest.mark.gpu
def test_stage_timer_uses_cuda_events():
    timer = StageTimer("cuda", "eager")
    x = torch.randn(2048, 2048, device="cuda")
    with timer.stage("boost"):
        for _ in range(10):
            x = x @ x / 2048
    out = timer.result()
    assert 0 < out["boost"] <= out["total"]


def test_progress_follows_the_choice_then_the_environment_then_the_terminal(monkeypatch):
    monkeypatch.delenv("WIFIDIFF_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a TTY
    assert not progress.wanted() and progress.wanted(True)
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "1")
    assert progress.wanted() and not progress.wanted(False)
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "0")
    assert not progress.wanted()


def test_progress_bar_counts_and_quiet_mode_prints_nothing(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress.progress(3, "generation", enabled=False) as bar:
        bar.update()
    assert err.getvalue() == ""
    with progress.progress(3, "generation", enabled=True, unit="step") as bar:
        for _ in range(3):
            bar.update()
    assert "generation" in err.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_command_line_rule_quiet_flag_then_environment_then_terminal(monkeypatch):
    monkeypatch.delenv("WIFIDIFF_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert progress.for_cli(False) and not progress.for_cli(True)  # on a terminal; --quiet wins
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a pipe or a log file
    assert not progress.for_cli(False)
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "1")
    assert progress.for_cli(False) and not progress.for_cli(True)  # the flag beats the environment
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "0")
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert not progress.for_cli(False)


def test_quiet_flag_has_both_spellings():
    p = argparse.ArgumentParser()
    progress.add_quiet_flag(p)
    assert p.parse_args(["--quiet"]).quiet and p.parse_args(["--no-progress"]).quiet
    assert not p.parse_args([]).quiet
