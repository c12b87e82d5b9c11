"""Fixtures shared by the runtime tests: the tiny preset's networks and an artifact cache."""

import pytest
import torch

from wifidiff_fast.models.checkpoint import build_networks
from wifidiff_fast.models.presets import preset
from wifidiff_fast.runtime.artifacts import ArtifactCache


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    n = build_networks(preset("tiny"))
    for m in n.modules().values():
        m.eval()
    return n


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return ArtifactCache(tmp_path_factory.mktemp("runtime_cache"))
