"""``tensorrt``: a TensorRT engine built from the cached ONNX graph (:mod:`.onnxrt`).

Only where the ``tensorrt`` package and its libraries are installed (none of this project's
machines has them, DESIGN §3: this module is unverified here and its tests skip). The engine is
cached like every artifact, keyed additionally by the TensorRT version and the GPU; the builder's
timing cache lives beside the engines (one per GPU kind and TensorRT version,
:func:`timing_cache_path`) so a rebuild for a new shape is quick.
The engine has one optimisation profile over the batch dimension (1 … ``MAX_BATCH``, tuned for the
example batch) and runs on torch's current CUDA stream with torch-allocated buffers — no pycuda,
no host synchronisation.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from .artifacts import ArtifactKey
from .onnxrt import cached_onnx
from .runners import NetworkRunner

log = logging.getLogger(__name__)
ENGINE_FILE = "engine.plan"
MAX_BATCH = 1024
WORKSPACE_BYTES = 4 << 30


def timing_cache_path(root: Path, device_tag: str, trt_version: str) -> Path:
    """The builder's timing cache for one GPU kind (``artifacts.device_tag``) and one TensorRT
    version. Keyed by the version too, as the engines are: TensorRT documents a timing cache as
    valid only for the exact version that wrote it, so one file shared by two installs would be
    rejected or thrown away at every switch between them. The name keeps only filename-safe
    characters (GPU names have spaces)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{device_tag}-trt{trt_version}")
    return Path(root) / "tensorrt" / f"timing-{safe}.cache"


def _torch_dtype(trt, dt):
    return {
        trt.float32: torch.float32,
        trt.float16: torch.float16,
        trt.bfloat16: torch.bfloat16,
        trt.int64: torch.int64,
        trt.int32: torch.int32,
    }[dt]


class TensorRTRunner(NetworkRunner):
    backend = "tensorrt"

    def key(self, inputs) -> ArtifactKey:
        import tensorrt as trt

        shapes = [(-1, *x.shape[1:]) for x in inputs]
        return ArtifactKey.make(
            "tensorrt",
            self.source,
            shapes,
            self.dtype,
            self.device,
            versions={"tensorrt": trt.__version__},
            opt_batch=inputs[0].shape[0],
        )

    def _build_engine(self, onnx_path, inputs, path) -> None:
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.dtype == torch.float16:
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.dtype == torch.bfloat16:
            config.set_flag(trt.BuilderFlag.BF16)
        profile = builder.create_optimization_profile()
        opt = inputs[0].shape[0]
        for i, x in enumerate(inputs):
            rest = tuple(x.shape[1:])
            profile.set_shape(
                network.get_input(i).name, (1, *rest), (opt, *rest), (max(opt, MAX_BATCH), *rest)
            )
        config.add_optimization_profile(profile)
        timing_path = timing_cache_path(self.cache.root, self.key(inputs).device, trt.__version__)
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build the engine (see its log above)")
        path.write_bytes(bytes(serialized))
        timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))

    def _build(self, inputs):
        import tensorrt as trt

        onnx_found = cached_onnx(self, inputs)
        found = self.cache.get_or_build(
            self.key(inputs), ENGINE_FILE, lambda path: self._build_engine(onnx_found.path, inputs, path)
        )
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(found.path.read_bytes())
        if engine is None:  # a plan from another TensorRT/GPU that slipped past the key
            raise RuntimeError(f"TensorRT could not deserialize {found.path}; delete it to rebuild")
        context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        in_names = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        out_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        out_dtype = _torch_dtype(trt, engine.get_tensor_dtype(out_name))
        self.last_lookup = found

        def run(*xs):
            xs = [
                x.to(_torch_dtype(trt, engine.get_tensor_dtype(n))).contiguous() for n, x in zip(in_names, xs)
            ]
            for n, x in zip(in_names, xs):
                context.set_input_shape(n, tuple(x.shape))
                context.set_tensor_address(n, x.data_ptr())
            out = torch.empty(tuple(context.get_tensor_shape(out_name)), dtype=out_dtype, device=self.device)
            context.set_tensor_address(out_name, out.data_ptr())
            if not context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            return out

        return run

    def _cast(self, inputs):
        # TensorRT reads NCHW buffers: never hand it channels_last
        return tuple(x.contiguous() for x in super()._cast(inputs))


__all__ = ["TensorRTRunner", "timing_cache_path"]
