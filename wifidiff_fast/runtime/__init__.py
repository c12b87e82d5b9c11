"""Low-latency runtime: network backends (eager, torch.compile, AOTInductor, ONNX Runtime,
TensorRT where installed) behind one interface, their on-disk artifact cache, the CUDA-graph
runner, the micro-batcher, NVTX ranges and progress reporting.

Importing this package compiles nothing, touches no GPU and imports no optional dependency.
"""

from .backends import NETWORK_BACKENDS, NetworkBackendUnavailable, availability, select  # noqa: F401
