"""The midpoint cache of RadioDiff-Flux-style reuse: bounded in bytes, LRU, thread-safe, fp16.

Keys are strings (see :func:`midpoint_key`); values are the K stage-1 midpoints of one map,
``[K, H, W]``, stored as fp16 on the CPU. With ``persist_dir`` every entry is also written to
disk (one safetensors file per key) and read back on a miss, so a restarted service keeps its
warm layouts.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def midpoint_key(buildings: np.ndarray, model_id: str, sampler: dict, seed: int, stage1_steps: int) -> str:
    """hash(building bytes, grid, model id, sampler config, seed, R) — DESIGN §1.

    R enters as the number of stage-1 steps ``round(R·S)``: two ratios that run the same stage 1
    share its midpoints.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(buildings, dtype=np.uint8).tobytes())
    h.update(
        repr((buildings.shape, model_id, sorted(sampler.items()), int(seed), int(stage1_steps))).encode()
    )
    return h.hexdigest()


class MidpointCache:
    def __init__(self, max_bytes: int = 256 * 2**20, persist_dir: str | Path | None = None):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.persist_dir = Path(persist_dir) if persist_dir is not None else None
        if self.persist_dir is not None:
            self.persist_dir.mkdir(parents=True, exist_ok=True)
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> torch.Tensor | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return value
        path = self.persist_dir / f"{key}.safetensors" if self.persist_dir is not None else None
        if path is not None and path.is_file():
            try:
                value = load_file(str(path))["midpoint"]
            except Exception:  # unreadable or foreign file: recompute rather than fail the request
                value = None
            if value is not None:
                self._insert(key, value)
                with self._lock:
                    self.hits += 1
                return value
        with self._lock:
            self.misses += 1
        return None

    def put(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Store ``value`` (as fp16 on the CPU) and return the stored tensor."""
        stored = value.detach().to("cpu", torch.float16).contiguous()
        self._insert(key, stored)
        if self.persist_dir is not None:
            # write-then-rename: a concurrent reader never sees a half-written file
            tmp = self.persist_dir / f"{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            save_file({"midpoint": stored}, str(tmp))
            os.replace(tmp, self.persist_dir / f"{key}.safetensors")
        return stored

    def _insert(self, key: str, value: torch.Tensor) -> None:
        size = value.numel() * value.element_size()
        with self._lock:
            if key in self._entries:
                old = self._entries.pop(key)
                self._bytes -= old.numel() * old.element_size()
            if size > self.max_bytes:
                return  # larger than the whole cache: never kept in memory
            # evict before inserting, so that the held bytes never exceed the budget, even for an
            # instant (a reader of ``nbytes`` needs no lock)
            while self._bytes + size > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.numel() * old.element_size()
            self._entries[key] = value
            self._bytes += size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
