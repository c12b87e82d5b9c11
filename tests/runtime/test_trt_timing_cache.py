"""The TensorRT builder's timing-cache file is keyed by GPU kind and TensorRT version (pure: runs
without tensorrt installed)."""

from __future__ import annotations

from pathlib import Path

from wifidiff_fast.runtime.trt import timing_cache_path

H200 = "cuda:NVIDIA H200:sm90"


def test_one_file_per_gpu_kind_and_tensorrt_version(tmp_path):
    base = timing_cache_path(tmp_path, H200, "10.3.0")
    assert base == timing_cache_path(tmp_path, H200, "10.3.0")  # stable: reused across builds
    assert base != timing_cache_path(tmp_path, H200, "10.4.0")  # an upgrade starts its own cache
    assert base != timing_cache_path(tmp_path, "cuda:NVIDIA A100-SXM4-80GB:sm80", "10.3.0")
    assert base.parent == Path(tmp_path) / "tensorrt"


def test_name_is_one_filename_safe_component(tmp_path):
    path = timing_cache_path(tmp_path, "cuda:Odd/GPU name\\x:sm90", "10.3.0+cuda12")
    assert path.parent == tmp_path / "tensorrt"  # a slash in the GPU name makes no folder
    assert all(c.isalnum() or c in "._-" for c in path.name), path.name
    assert "10.3.0" in path.name and "sm90" in path.name
