"""Checkpoints: a directory with ``weights.safetensors`` and ``config.json``.

The config records the architecture of the three networks, the dBm normalisation range, the
scheduler and sampler defaults, the pipeline hyper-parameters, the training record and the
sha256 of the weights file, which is checked at load: a corrupted or swapped file is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .correction import CorrectionConfig, CorrectionResNet
from .unet import UNet, UNetConfig

FORMAT = "wifidiff_fast.checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
NETWORKS = ("boost", "denoiser", "correction")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says how to fix it."""


@dataclass
class Networks:
    boost: UNet
    denoiser: UNet
    correction: CorrectionResNet

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"boost": self.boost, "denoiser": self.denoiser, "correction": self.correction}


def build_networks(arch: dict) -> Networks:
    """Instantiate the three networks from config dataclasses or their dicts."""

    def cfg(value, cls):
        return value if isinstance(value, cls) else cls.from_dict(value)

    return Networks(
        UNet(cfg(arch["boost"], UNetConfig)),
        UNet(cfg(arch["denoiser"], UNetConfig)),
        CorrectionResNet(cfg(arch["correction"], CorrectionConfig)),
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(directory: str | Path, nets: Networks, config: dict, dtype=torch.float16) -> Path:
    """Write weights (``dtype``, fp16 by default to halve the shipped size) and the config."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, module in nets.modules().items():
        for key, value in module.state_dict().items():
            v = value.detach().cpu()
            tensors[f"{name}.{key}"] = v.to(dtype).contiguous() if v.is_floating_point() else v.contiguous()
    weights = directory / WEIGHTS_FILE
    save_file(tensors, str(weights))
    config = dict(config)
    config["format"] = FORMAT
    config["format_version"] = FORMAT_VERSION
    config["networks"] = {name: module.cfg.to_dict() for name, module in nets.modules().items()}
    config["weights"] = {
        "file": WEIGHTS_FILE,
        "sha256": sha256_file(weights),
        "dtype": str(dtype).replace("torch.", ""),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


def read_config(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a checkpoint: {CONFIG_FILE} is missing")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); re-export the checkpoint") from None
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} config (format={config.get('format')!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {config.get('format_version')!r}; this wifidiff_fast reads "
            f"version {FORMAT_VERSION}. Re-export the checkpoint with this version."
        )
    for key in ("networks", "weights", "normalisation", "scheduler"):
        if key not in config:
            raise CheckpointError(f"{path} lacks the '{key}' section; re-export the checkpoint")
    return config


def load_checkpoint(directory: str | Path, device="cpu") -> tuple[Networks, dict]:
    """Networks (fp32, eval mode, on ``device``) and the config; verifies the weights' sha256."""
    directory = Path(directory)
    config = read_config(directory)
    weights = directory / config["weights"]["file"]
    if not weights.is_file():
        raise CheckpointError(f"weights file {weights} is missing")
    digest = sha256_file(weights)
    if digest != config["weights"]["sha256"]:
        raise CheckpointError(
            f"{weights} does not match the sha256 in {CONFIG_FILE} (found {digest[:12]}…, expected "
            f"{config['weights']['sha256'][:12]}…): the file is corrupted or from another checkpoint"
        )
    nets = build_networks(config["networks"])
    tensors = load_file(str(weights))
    for name, module in nets.modules().items():
        prefix = f"{name}."
        state = {
            k[len(prefix) :]: v.float() if v.is_floating_point() else v
            for k, v in tensors.items()
            if k.startswith(prefix)
        }
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"weights of '{name}' do not fit its architecture: {exc}") from None
        module.to(device).eval()
    return nets, config
