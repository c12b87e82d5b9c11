"""``python -m wifidiff_fast.bench``: runs end to end on a tiny checkpoint and reports the reference
ratio, the same-election check and the peers; bad arguments exit 2 with one line."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pipeline"))
from wifidiff_fast.bench import memory  # noqa: E402
from wifidiff_fast.bench.__main__ import main  # noqa: E402
from wifidiff_fast.bench.memory import PeakRSS  # noqa: E402

from pipecases import write_tiny_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ck"))


def test_paper_and_fast_workloads_print_the_table_and_write_json(ckpt, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "paper",
            "fast",
            "--checkpoint",
            str(ckpt),
            "--backend",
            "eager",
            "--candidates",
            "2",
            "--steps",
            "2",
            "--warmup",
            "0",
            "--runs",
            "2",
            "--fast-maps",
            "1",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr()
    assert "time ÷ engine" in printed.out and "[bench" in printed.err  # table on stdout, progress on stderr
    data = json.loads(out.read_text())
    rows = {(r["workload"].split()[0], r["impl"]): r for r in data["rows"]}
    assert set(rows) == {
        ("paper", "engine"),
        ("paper", "reference"),
        ("fast", "engine"),
        ("fast", "engine, one pass"),  # the tiny checkpoint averages 8 symmetries, as the shipped one
        ("fast", "reference"),
        ("fast", "pykrige"),
        ("fast", "scipy-rbf"),
    }
    paper = rows[("paper", "engine")]
    assert paper["runs"] == 2 and paper["same_elected"] in (True, False)
    assert paper["generation_p50_ms"] > 0 and paper["total_p90_ms"] >= paper["total_p50_ms"]
    ref = rows[("paper", "reference")]
    assert ref["over_engine"] == pytest.approx(ref["total_p50_ms"] / paper["total_p50_ms"])
    assert rows[("fast", "pykrige")]["total_p50_ms"] > 0
    assert rows[("fast", "engine, one pass")]["boost_p50_ms"] > 0
    assert data["meta"]["torch"] and data["meta"]["cpu_count"] >= 1
    assert "peak RSS Δ MB" in printed.out  # on CPU the column says what it measures
    for row in data["rows"]:  # per row, from the timed runs: not the process-lifetime ru_maxrss
        assert row["peak_rss_delta_mb"] >= 0 and row["peak_mem_mb"] >= row["peak_rss_delta_mb"]


def test_unknown_workload_exits_2(capsys):
    assert main(["warp"]) == 2
    assert "unknown workload(s) warp" in capsys.readouterr().err


def test_unavailable_backend_exits_2_naming_it(ckpt, capsys):
    assert main(["paper", "--checkpoint", str(ckpt), "--backend", "tensorrt"]) == 2
    assert "TensorRT runs on NVIDIA GPUs only" in capsys.readouterr().err


def test_batch_and_reuse_workloads(ckpt, tmp_path):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "batch",
            "reuse",
            "--checkpoint",
            str(ckpt),
            "--backend",
            "eager",
            "--candidates",
            "2",
            "--steps",
            "2",
            "--warmup",
            "0",
            "--runs",
            "1",
            "--batch-size",
            "2",
            "--ratios",
            "0.5",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["workload"] for r in rows} == {"batch (2 maps)", "reuse R=0.5"}
    batch = next(r for r in rows if r["workload"] == "batch (2 maps)" and r["impl"] == "engine")
    assert batch["maps"] == 2 and batch["maps_per_s"] > 0


def test_peak_rss_sees_one_runs_own_allocation_and_not_earlier_ones():
    held = np.ones(100 * 2**20 // 8)  # 100 MiB allocated and touched before the measured run
    with PeakRSS() as idle:
        time.sleep(0.05)
    assert abs(idle.delta_mb) < 20  # what the process already held is not this run's
    del held
    with PeakRSS() as busy:
        block = np.ones(100 * 2**20 // 8)  # touched: resident
        time.sleep(0.1)  # held across several samples, then freed before the run ends
        del block
    assert busy.delta_mb > 80 and busy.peak_mb >= busy.delta_mb


def test_peak_rss_where_rss_cannot_be_read_is_nan_not_zero(monkeypatch):
    monkeypatch.setattr(memory, "rss_reader", lambda: None)
    with PeakRSS() as m:
        pass
    assert math.isnan(m.peak_mb) and math.isnan(m.delta_mb)


def test_pipeline_table_reports_the_timed_runs_memory(ckpt, tmp_path, capsys):
    """``bench pipeline`` (the op-backend table): one row per backend, the peak memory of its
    timed runs (sampled RSS on CPU), and the reference/engine ratio."""
    out = tmp_path / "pipeline.json"
    rc = main(
        ["pipeline", "--checkpoint", str(ckpt), "--candidates", "2", "--steps", "1", "--n", "10"]
        + ["--batch", "0", "--repeats", "1", "--backends", "auto,reference", "--json", str(out)]
    )
    assert rc == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["backend"] for r in rows] == ["auto", "reference"]
    for r in rows:
        assert r["peak_mem_mb"] > 0 and math.isfinite(r["peak_mem_mb"])
        assert r["total_p50_ms"] > 0
    assert "ref/engine" in capsys.readouterr().out
