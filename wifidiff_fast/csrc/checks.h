// Input checks of the C++ operators: the mirror of wifidiff_fast/ops/_checks.py, written once and
// used by the CPU and the CUDA paths (host code only).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace wifidiff {

inline bool is_float(const at::Tensor& t) {
  auto s = t.scalar_type();
  return s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16;
}

#define WD_CHECK_FLOAT(t)                                                            \
  TORCH_CHECK_TYPE(::wifidiff::is_float(t), #t " must be fp16/bf16/fp32/fp64, got ", \
                   (t).scalar_type())
#define WD_CHECK_DTYPE(t, dt)                                                         \
  TORCH_CHECK_TYPE((t).scalar_type() == (dt), #t " must have dtype ", (dt), ", got ", \
                   (t).scalar_type())
#define WD_CHECK_CONTIG(t) TORCH_CHECK((t).is_contiguous(), #t " must be contiguous")
#define WD_CHECK_DEVICE(t, ref)                                                             \
  TORCH_CHECK((t).device() == (ref).device(), #t " is on ", (t).device(), " but expected ", \
              (ref).device())
#define WD_CHECK_DIM(t, n) TORCH_CHECK((t).dim() == (n), #t " must be " #n "-D, got ", (t).sizes())
#define WD_CHECK_SHAPE(t, ref)                                                            \
  TORCH_CHECK((t).sizes() == (ref).sizes(), #t " has shape ", (t).sizes(), ", expected ", \
              (ref).sizes())
#define WD_CHECK_NONEMPTY(t) \
  TORCH_CHECK((t).numel() > 0, #t " is empty: an empty batch has nothing to do")

}  // namespace wifidiff
