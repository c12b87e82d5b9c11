"""The exported-network cache: keys, hits without rebuilding, stale and corrupt entries rebuilt."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from wifidiff_fast.runtime.artifacts import MANIFEST, ArtifactCache, ArtifactKey, model_hash


def small_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU())


def key_for(net, **over):
    base = dict(backend="aot", module=net, shapes=[(-1, 2, 8, 8)], dtype=torch.float32, device="cpu")
    base.update(over)
    return ArtifactKey.make(
        base.pop("backend"),
        base.pop("module"),
        base.pop("shapes"),
        base.pop("dtype"),
        base.pop("device"),
        **base,
    )


def test_model_hash_follows_weights_not_identity():
    a, b = small_net(0), small_net(0)
    assert model_hash(a) == model_hash(b)
    with torch.no_grad():
        b[0].weight[0, 0, 0, 0] += 1e-3
    assert model_hash(a) != model_hash(b)


def test_key_digest_changes_with_each_field():
    net = small_net()
    base = key_for(net)
    variants = [
        key_for(net, shapes=[(-1, 2, 16, 8)]),
        key_for(net, dtype=torch.bfloat16),
        key_for(net, backend="onnx"),
        key_for(net, channels_last=True),
        key_for(small_net(1)),
        dataclasses.replace(base, device="cuda:NVIDIA H200:sm90"),
        ArtifactKey.make("aot", net, [(-1, 2, 8, 8)], torch.float32, "cpu", versions={"torch": "0.0.1"}),
    ]
    digests = {v.digest() for v in variants}
    assert base.digest() not in digests and len(digests) == len(variants)
    assert key_for(net).digest() == base.digest()  # deterministic
    assert dict(base.versions)["torch"] == torch.__version__


class Builder:
    def __init__(self, payload=b"artifact"):
        self.calls = 0
        self.payload = payload

    def __call__(self, path):
        self.calls += 1
        path.write_bytes(self.payload)


def test_built_once_then_loaded(tmp_path):
    cache, key, build = ArtifactCache(tmp_path), key_for(small_net()), Builder()
    first = cache.get_or_build(key, "a.bin", build)
    assert first.built and first.reason == "built" and first.path.read_bytes() == b"artifact"
    again = ArtifactCache(tmp_path).get_or_build(key, "a.bin", build)  # a new process, same disk
    assert again.reason == "hit" and not again.built and build.calls == 1


def test_corrupt_artifact_is_detected_and_rebuilt(tmp_path):
    cache, key, build = ArtifactCache(tmp_path), key_for(small_net()), Builder()
    path = cache.get_or_build(key, "a.bin", build).path
    path.write_bytes(b"artefact")  # same size, different bytes: only the hash can tell
    found = cache.lookup(key)
    assert found.path is None and found.reason.startswith("corrupt")
    rebuilt = cache.get_or_build(key, "a.bin", build)
    assert rebuilt.built and build.calls == 2 and rebuilt.path.read_bytes() == b"artifact"


def test_truncated_or_missing_files_are_rebuilt(tmp_path):
    cache, key, build = ArtifactCache(tmp_path), key_for(small_net()), Builder()
    path = cache.get_or_build(key, "a.bin", build).path
    path.unlink()
    assert cache.lookup(key).reason.startswith("corrupt")
    cache.get_or_build(key, "a.bin", build)
    (cache.entry_dir(key) / MANIFEST).write_text("{not json")
    assert cache.lookup(key).reason.startswith("corrupt")
    assert cache.get_or_build(key, "a.bin", build).built and build.calls == 3


def test_stale_manifest_is_rebuilt(tmp_path):
    """An entry written for other versions (e.g. copied between machines) is never used."""
    cache, key, build = ArtifactCache(tmp_path), key_for(small_net()), Builder()
    cache.get_or_build(key, "a.bin", build)
    mpath = cache.entry_dir(key) / MANIFEST
    manifest = json.loads(mpath.read_text())
    manifest["key"]["versions"] = [["torch", "1.0.0"]]
    mpath.write_text(json.dumps(manifest))
    found = cache.lookup(key)
    assert found.path is None and found.reason.startswith("stale")
    assert cache.get_or_build(key, "a.bin", build).built and build.calls == 2


def test_a_failed_build_leaves_no_entry(tmp_path):
    cache, key = ArtifactCache(tmp_path), key_for(small_net())

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        cache.get_or_build(key, "a.bin", broken)
    assert cache.lookup(key).reason == "missing"
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "aot").iterdir())
