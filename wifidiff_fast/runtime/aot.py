"""``aot``: ``torch.export`` + AOTInductor, built once per (model, input shape, dtype, device,
torch) and cached on disk (:mod:`.artifacts`); later processes load the package in milliseconds.

The batch dimension is exported dynamic, so one package serves every chunk size of a grid (inputs
the runner broadcasts keep their batch of 1). A package that fails to load although its hash
checked out (e.g. a library it links moved) is discarded and rebuilt once.
"""

from __future__ import annotations

import logging
import shutil

import torch

from .artifacts import ArtifactKey
from .runners import Autocast, NetworkRunner, dynamic_batch_examples

log = logging.getLogger(__name__)
PACKAGE_FILE = "model.pt2"
MAX_BATCH = 4096


def export_program(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], broadcast: tuple[int, ...] = ()
) -> torch.export.ExportedProgram:
    """The module exported with a dynamic batch dimension shared by all inputs but the
    ``broadcast`` ones (batch 1, static)."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    examples = dynamic_batch_examples(inputs, broadcast=broadcast)
    dynamic = tuple(None if i in broadcast else {0: batch} for i in range(len(examples)))
    with torch.no_grad():
        return torch.export.export(module, examples, dynamic_shapes=dynamic)


class AOTRunner(NetworkRunner):
    backend = "aot"

    def _exportable(self) -> torch.nn.Module:
        # low precision as an exported autocast region: fp32 weights, norms and inputs
        return (
            self.module
            if self.dtype == torch.float32
            else Autocast(self.module, self.device.type, self.dtype)
        )

    def key(self, inputs) -> ArtifactKey:
        shapes = [(1 if i in self.broadcast else -1, *x.shape[1:]) for i, x in enumerate(inputs)]
        # another exported signature of the same weights (the split denoiser) gets its own key;
        # modules without one keep the keys, and the cached packages, they always had
        form = getattr(self.source, "export_form", None)
        return ArtifactKey.make(
            "aot",
            self.source,
            shapes,
            self.dtype,
            self.device,
            channels_last=self.channels_last,
            input_dtypes=",".join(str(x.dtype) for x in inputs),
            **({"form": form} if form else {}),
        )

    def _build(self, inputs):
        key = self.key(inputs)
        module = self._exportable()
        typed = inputs

        def build(path):
            log.info(
                "%s[aot]: exporting and compiling for %s (once; cached in %s)",
                self.name,
                [tuple(x.shape) for x in inputs],
                self.cache.root,
            )
            program = export_program(module, typed, self.broadcast)
            torch._inductor.aoti_compile_and_package(program, package_path=str(path))

        for attempt in range(2):
            found = self.cache.get_or_build(key, PACKAGE_FILE, build)
            try:
                package = torch._inductor.aoti_load_package(str(found.path))
                break
            except Exception as exc:
                if attempt:
                    raise
                log.warning(
                    "%s[aot]: cached package %s does not load (%s: %s); rebuilding it",
                    self.name,
                    found.path,
                    type(exc).__name__,
                    exc,
                )
                shutil.rmtree(found.path.parent, ignore_errors=True)
        self.last_lookup = found
        return package
