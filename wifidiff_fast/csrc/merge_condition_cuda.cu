// merge_condition CUDA kernels: a grid-stride copy of (S, M) with the sample rule, then one
// thread per boost point (the real samples win).
#include <ATen/Dispatch.h>
#include <ATen/core/TensorBase.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda_utils.cuh"
#include "merge_condition.h"

namespace wifidiff {
namespace {

template <typename scalar_t>
__global__ void merge_fill_kernel(const scalar_t* __restrict__ S, const scalar_t* __restrict__ M,
                                  scalar_t* __restrict__ S_out, scalar_t* __restrict__ M_out,
                                  int64_t n) {
  using acc = acc_t<scalar_t>;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const acc m = acc(M[i]);
    S_out[i] = m > 0 ? S[i] : scalar_t(0);
    M_out[i] = (m != m || m > 0) ? M[i] : scalar_t(0);
  }
}

template <typename scalar_t>
__global__ void merge_points_kernel(const scalar_t* __restrict__ R, const int64_t* __restrict__ pts,
                                    const scalar_t* __restrict__ S, const scalar_t* __restrict__ M,
                                    scalar_t* __restrict__ S_out, scalar_t* __restrict__ M_out,
                                    int64_t B, int64_t P, int64_t H, int64_t W) {
  using acc = acc_t<scalar_t>;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < B * P;
       k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t b = k / P, r = pts[2 * k], c = pts[2 * k + 1];
    if (r < 0 || r >= H || c < 0 || c >= W) continue;
    const int64_t i = b * H * W + r * W + c;
    const acc m = acc(M[i]);
    S_out[i] = m > 0 ? S[i] : R[i];  // the real samples win
    M_out[i] = (m != m || m > 1) ? M[i] : scalar_t(1);
  }
}

}  // namespace

void launch_merge_condition_kernel(const at::TensorBase& R_hat, const at::TensorBase& points,
                                   const at::TensorBase& S, const at::TensorBase& M,
                                   const at::TensorBase& S_prime, const at::TensorBase& M_prime) {
  const c10::cuda::CUDAGuard guard(R_hat.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t B = R_hat.size(0), H = R_hat.size(1), W = R_hat.size(2), P = points.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, R_hat.scalar_type(), "merge_condition_cuda", [&] {
        merge_fill_kernel<scalar_t><<<grid_stride_blocks(S.numel(), 256), 256, 0, stream>>>(
            S.const_data_ptr<scalar_t>(), M.const_data_ptr<scalar_t>(),
            S_prime.mutable_data_ptr<scalar_t>(), M_prime.mutable_data_ptr<scalar_t>(), S.numel());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        if (B * P > 0) {
          merge_points_kernel<scalar_t><<<grid_stride_blocks(B * P, 256), 256, 0, stream>>>(
              R_hat.const_data_ptr<scalar_t>(), points.const_data_ptr<int64_t>(),
              S.const_data_ptr<scalar_t>(), M.const_data_ptr<scalar_t>(),
              S_prime.mutable_data_ptr<scalar_t>(), M_prime.mutable_data_ptr<scalar_t>(), B, P, H,
              W);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
}

}  // namespace wifidiff
