"""Network-backend selection: one module decides; an explicit but unavailable backend says why."""

from __future__ import annotations

import pytest
import torch

from wifidiff_fast.runtime import backends as sel


def test_eager_is_always_available():
    assert sel.availability("eager", "cpu").ok
    assert sel.select("eager", "cpu") == "eager"


def test_auto_takes_the_first_available_in_the_default_order():
    chosen = sel.select("auto", "cpu")
    expected = next(b for b in sel.DEFAULT_ORDER["cpu"] if sel.availability(b, "cpu").ok)
    assert chosen == expected


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown network backend 'turbo'"):
        sel.availability("turbo", "cpu")


def test_tensorrt_on_cpu_names_the_missing_piece():
    with pytest.raises(sel.NetworkBackendUnavailable, match="TensorRT runs on NVIDIA GPUs only"):
        sel.select("tensorrt", "cpu")


def test_missing_onnx_packages_name_the_fix(monkeypatch):
    monkeypatch.setattr(sel, "_has", lambda m: m not in ("onnxruntime", "onnxscript"))
    with pytest.raises(sel.NetworkBackendUnavailable, match=r"needs onnxscript, onnxruntime: pip install"):
        sel.select("onnx", "cpu")
    # auto skips it silently
    assert sel.select("auto", "cpu") != "onnx"


def test_inductor_without_a_compiler_names_the_fix(monkeypatch):
    monkeypatch.setattr(sel, "_cxx", lambda: None)
    for name in ("compile", "aot"):
        with pytest.raises(sel.NetworkBackendUnavailable, match="needs a C\\+\\+ compiler"):
            sel.select(name, "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_a_gpu_is_unavailable():
    st = sel.availability("compile", "cuda")
    assert not st.ok and "no CUDA device" in st.reason
