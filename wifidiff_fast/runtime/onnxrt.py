"""``onnx``: the network exported to ONNX (dynamo exporter) and run by ONNX Runtime.

On the CPU this is a second, independent compiled form of the network, and it proves the
exported graph that the TensorRT backend consumes. The ``.onnx`` file is cached like every
artifact (:mod:`.artifacts`), with a dynamic batch dimension.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import torch

from .artifacts import ArtifactKey
from .runners import NetworkRunner, dynamic_batch_examples

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
OPSET = 18


def export_onnx(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path) -> None:
    """Write ``module`` as ONNX with a dynamic batch dimension shared by all inputs."""
    import warnings

    batch = torch.export.Dim("batch", min=1, max=4096)
    examples = dynamic_batch_examples(inputs)
    names = [f"input_{i}" for i in range(len(examples))]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            examples,
            dynamo=True,
            opset_version=OPSET,
            input_names=names,
            output_names=["output"],
            verbose=False,
            dynamic_shapes=tuple({0: batch} for _ in examples),
        )
        program.save(str(path))


def onnx_key(runner: NetworkRunner, inputs) -> ArtifactKey:
    """The ONNX graph does not depend on the device: CPU and GPU processes share one file."""
    import onnx

    shapes = [(-1, *x.shape[1:]) for x in inputs]
    key = ArtifactKey.make(
        "onnx",
        runner.source,
        shapes,
        torch.float32,
        "cpu",
        versions={"onnx": onnx.__version__, "opset": str(OPSET)},
        input_dtypes=",".join(str(x.dtype) for x in inputs),
    )
    return dataclasses.replace(key, device="any")


def cached_onnx(runner: NetworkRunner, inputs):
    """The verified fp32 ``.onnx`` file for ``runner``'s module and ``inputs`` (built on a miss).
    Always fp32: TensorRT lowers precision itself (builder flags)."""
    examples = tuple(x.contiguous() for x in inputs)  # the graph is layout-free; export from NCHW
    return runner.cache.get_or_build(
        onnx_key(runner, inputs), ONNX_FILE, lambda path: export_onnx(runner.source, examples, path)
    )


class OnnxRuntimeRunner(NetworkRunner):
    backend = "onnx"

    def _build(self, inputs):
        import onnxruntime as ort

        found = cached_onnx(self, inputs)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            providers = [("CUDAExecutionProvider", {"device_id": self.device.index or 0})] + providers
        session = ort.InferenceSession(os.fspath(found.path), options, providers=providers)
        names = [i.name for i in session.get_inputs()]
        if self.dtype != torch.float32:
            raise ValueError(
                f"the onnx backend runs float32 graphs, not {self.dtype}; use aot or compile "
                "(autocast) or tensorrt (fp16/bf16 builder flags) for lower precision"
            )
        self.last_lookup = found

        def run(*xs):
            feed = {}
            for name, x in zip(names, xs):
                a = x.detach().to("cpu").contiguous().numpy()
                feed[name] = a
            out = session.run(None, feed)[0]
            return torch.from_numpy(np.ascontiguousarray(out)).to(self.device)

        return run
