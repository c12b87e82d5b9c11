"""The native extension's build cache is keyed per checkout: two clones never rebuild each
other's library (ninja's build files hold absolute source paths)."""

from __future__ import annotations

from pathlib import Path

from wifidiff_fast.ops import _native


def test_two_checkouts_get_two_build_directories(monkeypatch, tmp_path):
    here = _native.build_dir(False)
    monkeypatch.setattr(_native, "CSRC", tmp_path / "other-clone" / "wifidiff_fast" / "csrc")
    there = _native.build_dir(False)
    assert here != there and here.parent == there.parent
    monkeypatch.setattr(_native, "CSRC", Path(str(tmp_path / "other-clone" / "wifidiff_fast" / "csrc")))
    assert _native.build_dir(False) == there  # stable for one checkout


def test_the_tag_still_names_torch_python_and_device():
    tag = _native.build_dir(False).name
    assert tag.startswith("torch") and "-py3" in tag and "-cpu-" in tag and "-src" in tag


def test_the_checkout_tag_follows_the_resolved_path(tmp_path):
    real = tmp_path / "clone"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert _native.checkout_tag(real) == _native.checkout_tag(link)
    assert _native.checkout_tag(real) != _native.checkout_tag(tmp_path)
