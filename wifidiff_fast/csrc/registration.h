// Registration of one operator of the wifidiff_C library, used once at the end of each <op>.cpp
// (torchvision's one-file-per-op pattern): the schema is declared beside the operator, so adding
// an op touches no shared list. The operator function checks its inputs and calls the CPU body or
// the CUDA launcher by device itself, so the same function serves both dispatch keys.
#pragma once

#include <torch/library.h>

#ifdef WITH_CUDA
#define WD_REGISTER_CUDA_IMPL(op) \
  TORCH_LIBRARY_IMPL(wifidiff_C, CUDA, m) { m.impl(#op, &op); }
#else
#define WD_REGISTER_CUDA_IMPL(op)
#endif

// WD_REGISTER_OP(op, "op(Tensor x, ...) -> (...)"): the schema and the CPU (and CUDA) kernel.
#define WD_REGISTER_OP(op, schema)                             \
  TORCH_LIBRARY_FRAGMENT(wifidiff_C, m) { m.def(schema); }     \
  TORCH_LIBRARY_IMPL(wifidiff_C, CPU, m) { m.impl(#op, &op); } \
  WD_REGISTER_CUDA_IMPL(op)
