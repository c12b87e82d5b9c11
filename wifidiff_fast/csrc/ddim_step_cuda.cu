// ddim_step CUDA kernel: a grid-stride streaming pass, the formula from ddim_step.h.
// Headers limited to what compiles against any torch (DESIGN §3): no torch/extension.h.
#include <ATen/Dispatch.h>
#include <ATen/core/TensorBase.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cmath>

#include "cuda_utils.cuh"
#include "ddim_step.h"

namespace wifidiff {
namespace {

template <typename scalar_t>
__global__ void ddim_step_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ e,
                                 const scalar_t* __restrict__ z, const scalar_t* __restrict__ known,
                                 const uint8_t* __restrict__ known_mask, int64_t plane,
                                 int64_t per_group, const acc_t<scalar_t>* __restrict__ table,
                                 const int64_t* __restrict__ step_ptr, int64_t step_value,
                                 int64_t n_steps, bool clip, acc_t<scalar_t> clip_range,
                                 scalar_t* __restrict__ x_prev, scalar_t* __restrict__ x0_pred,
                                 int64_t n) {
  using acc = acc_t<scalar_t>;
  // the step row is read on the device (graph capture); out of range poisons x_prev
  const int64_t step = step_ptr ? *step_ptr : step_value;
  const bool ok = step >= 0 && step < n_steps;
  const acc* row = table + (ok ? step : 0) * 5;
  const DdimCoef<acc> c{row[0], row[1], row[2], row[3], row[4]};
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    // known-sample write: candidate i / plane reads row (i / plane) / per_group of the raster
    const int64_t k = known_mask ? known_index(i, plane, per_group) : 0;
    const bool w = known_mask && known_mask[k] != 0;
    acc a, b;
    ddim_update<acc>(acc(x[i]), acc(e[i]), z ? acc(z[i]) : acc(0), c, clip, clip_range, w,
                     w ? acc(known[k]) : acc(0), a, b);
    x_prev[i] = scalar_t(ok ? a : acc(NAN));
    x0_pred[i] = scalar_t(b);
  }
}

}  // namespace

void launch_ddim_step_kernel(const at::TensorBase& x_t, const at::TensorBase& eps,
                             const at::TensorBase& table, const int64_t* step_ptr,
                             int64_t step_value, const at::TensorBase* noise, bool clip_sample,
                             double clip_range, const KnownRaster& known,
                             const at::TensorBase& x_prev, const at::TensorBase& x0_pred) {
  const c10::cuda::CUDAGuard guard(x_t.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n = x_t.numel();
  constexpr int kThreads = 256;
  const int64_t blocks = grid_stride_blocks(n, kThreads);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x_t.scalar_type(), "ddim_step_cuda", [&] {
        using acc = acc_t<scalar_t>;
        ddim_step_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
            x_t.const_data_ptr<scalar_t>(), eps.const_data_ptr<scalar_t>(),
            noise ? noise->const_data_ptr<scalar_t>() : nullptr,
            known.known ? known.known->const_data_ptr<scalar_t>() : nullptr,
            known.mask ? known.mask->const_data_ptr<uint8_t>() : nullptr, known.plane,
            known.per_group, table.const_data_ptr<acc>(), step_ptr, step_value, table.size(0),
            clip_sample, static_cast<acc>(clip_range), x_prev.mutable_data_ptr<scalar_t>(),
            x0_pred.mutable_data_ptr<scalar_t>(), n);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace wifidiff
