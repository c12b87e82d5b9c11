"""The on-disk cache of exported networks (AOTInductor packages, ONNX files, TensorRT engines).

An entry is built once and loaded without recompiling. Its key names everything the artifact
depends on — the backend, the model's weights and architecture (:func:`model_hash`), the input
shapes (a dynamic batch is ``-1``), the dtype, the memory format, the device and the versions of
the compiler stack — and its directory name is the key's digest, so a new torch, new weights or a
new device simply miss. ``manifest.json`` beside the artifact repeats the key and the artifact's
sha256: an entry whose manifest disagrees with the key (stale) or whose file does not hash to the
recorded value (corrupt, truncated) is reported, deleted and rebuilt, never used.

Entries are written into a temporary directory and renamed into place, and concurrent builders
of one key serialise on a lock file, so two processes never see half an entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import _env

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
CACHE_FORMAT = 1


def model_hash(module: torch.nn.Module) -> str:
    """sha256 over the module's class, its config (when it has one) and every parameter and
    buffer (name, dtype, shape, bytes): identical weights in an identical architecture hash alike."""
    h = hashlib.sha256()
    h.update(type(module).__qualname__.encode())
    cfg = getattr(module, "cfg", None)
    h.update(repr(cfg).encode())
    state = module.state_dict()
    for name in sorted(state):
        value = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{value.dtype}|{tuple(value.shape)}".encode())
        h.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return h.hexdigest()


def device_tag(device: torch.device | str) -> str:
    """``cpu`` or ``cuda:<name>:sm<major><minor>``: an artifact compiled for one GPU is not
    loaded on another kind."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev.type
    major, minor = torch.cuda.get_device_capability(dev)
    return f"cuda:{torch.cuda.get_device_name(dev)}:sm{major}{minor}"


@dataclass(frozen=True)
class ArtifactKey:
    backend: str  # "aot", "onnx", "tensorrt"
    model: str  # model_hash()
    shapes: tuple[tuple[int, ...], ...]  # example input shapes, −1 = dynamic
    dtype: str  # "float32", "bfloat16", ...
    device: str  # device_tag()
    versions: tuple[tuple[str, str], ...] = ()  # (package, version) of the compiler stack
    options: tuple[tuple[str, str], ...] = ()  # memory format and other build options

    @classmethod
    def make(
        cls,
        backend: str,
        module: torch.nn.Module,
        shapes,
        dtype: torch.dtype,
        device,
        versions: dict[str, str] | None = None,
        model: str | None = None,
        **options,
    ) -> ArtifactKey:
        return cls(
            backend,
            model or model_hash(module),
            tuple(tuple(int(d) for d in s) for s in shapes),
            str(dtype).replace("torch.", ""),
            device_tag(device),
            tuple(sorted({"torch": torch.__version__, **(versions or {})}.items())),
            tuple(sorted((k, str(v)) for k, v in options.items())),
        )

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as read back from disk

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:32]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Lookup:
    path: Path | None  # the artifact file, or None on a miss
    reason: str  # "hit", "missing", "stale: ...", "corrupt: ..."
    built: bool = False
    build_seconds: float | None = None
    history: list[str] = field(default_factory=list)


class ArtifactCache:
    """``<root>/<backend>/<digest>/{artifact file, manifest.json}``; root defaults to
    ``WIFIDIFF_RUNTIME_CACHE_DIR`` (default ``$WIFIDIFF_CACHE_DIR/runtime``)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else _env.runtime_cache_dir()

    def entry_dir(self, key: ArtifactKey) -> Path:
        return self.root / key.backend / key.digest()

    def lookup(self, key: ArtifactKey) -> Lookup:
        """The entry's artifact when it is present and verified; otherwise why not (a stale or
        corrupt entry is deleted here so the next build starts clean)."""
        d = self.entry_dir(key)
        try:
            manifest = json.loads((d / MANIFEST).read_text())
        except FileNotFoundError:
            return Lookup(None, "missing")
        except (OSError, ValueError) as exc:
            return self._discard(d, f"corrupt: unreadable manifest ({type(exc).__name__})")
        if manifest.get("format") != CACHE_FORMAT or manifest.get("key") != key.to_json():
            return self._discard(
                d, "stale: the manifest was written for another key (versions, shapes or weights differ)"
            )
        path = d / str(manifest.get("file", ""))
        if not path.is_file():
            return self._discard(d, f"corrupt: {path.name} is missing")
        digest = _sha256_file(path)
        if digest != manifest.get("sha256"):
            return self._discard(
                d,
                f"corrupt: {path.name} hashes to {digest[:12]}…, the manifest "
                f"says {str(manifest.get('sha256'))[:12]}…",
            )
        return Lookup(path, "hit")

    def _discard(self, d: Path, reason: str) -> Lookup:
        log.warning("runtime cache entry %s is %s; rebuilding it", d, reason)
        shutil.rmtree(d, ignore_errors=True)
        return Lookup(None, reason)

    def get_or_build(self, key: ArtifactKey, filename: str, build: Callable[[Path], None]) -> Lookup:
        """The verified artifact for ``key``, building it with ``build(path)`` (which must write
        ``path``) when the entry is missing, stale or corrupt."""
        found = self.lookup(key)
        if found.path is not None:
            return found
        with self._locked(key):
            again = self.lookup(key)  # another process may have built it while we waited
            if again.path is not None:
                return again
            d = self.entry_dir(key)
            tmp = d.parent / f".{d.name}.{os.getpid()}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            t0 = time.perf_counter()
            try:
                build(tmp / filename)
                if not (tmp / filename).is_file():
                    raise RuntimeError(f"the {key.backend} build wrote no {filename}")
                seconds = time.perf_counter() - t0
                manifest = {
                    "format": CACHE_FORMAT,
                    "key": key.to_json(),
                    "file": filename,
                    "sha256": _sha256_file(tmp / filename),
                    "build_seconds": round(seconds, 2),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
                shutil.rmtree(d, ignore_errors=True)
                os.replace(tmp, d)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return Lookup(d / filename, "built", True, seconds, [found.reason])

    @contextmanager
    def _locked(self, key: ArtifactKey):
        import fcntl

        lock = self.root / key.backend / f".{key.digest()}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
