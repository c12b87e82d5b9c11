// Condition merge (spec: wifidiff_fast/reference/merge_condition.py): S′, M′ from the rough map
// at the boost points, the real samples written last.
#pragma once

#include <ATen/core/TensorBase.h>

#include <cstdint>

#include "common.h"

namespace wifidiff {

// CPU body (merge_condition.cpp).
void merge_condition_cpu(const at::TensorBase& R_hat, const at::TensorBase& points,
                         const at::TensorBase& S, const at::TensorBase& M,
                         const at::TensorBase& S_prime, const at::TensorBase& M_prime);

// CUDA launcher (merge_condition_cuda.cu).
void launch_merge_condition_kernel(const at::TensorBase& R_hat, const at::TensorBase& points,
                                   const at::TensorBase& S, const at::TensorBase& M,
                                   const at::TensorBase& S_prime, const at::TensorBase& M_prime);

}  // namespace wifidiff
