// critical_points CUDA kernels; per-pixel math from critical_points.h.
// (1) lambda2_kernel: one 32×16 output tile per block; the R̂ tile (+ halo) sits in shared
//     memory, gradient products are formed on the fly in the horizontal window pass, the
//     vertical pass and closed-form λ2 follow. (2) nms_keys_kernel: 3×3 NMS + selection keys.
//     The operator then runs at::topk on the keys and (3) decode_kernel writes the outputs.
#include <ATen/Dispatch.h>
#include <ATen/core/TensorBase.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "critical_points.h"
#include "cuda_utils.cuh"

namespace wifidiff {
namespace {

constexpr int kTileW = 32, kTileH = 16;

template <typename scalar_t>
__global__ void lambda2_kernel(const scalar_t* __restrict__ R, acc_t<scalar_t>* __restrict__ lam,
                               int64_t H, int64_t W, int rad, double sigma) {
  using acc = acc_t<scalar_t>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  acc* smem = reinterpret_cast<acc*>(smem_raw);
  const int taps = 2 * rad + 1;
  const int tw = kTileW + 2 * rad + 2, th = kTileH + 2 * rad + 2;  // R̂ tile with halo rad + 1
  const int hrows = kTileH + 2 * rad;
  acc* g = smem;             // [taps]
  acc* tile = g + taps;      // [th][tw]
  acc* hb = tile + th * tw;  // [3][hrows][kTileW]
  const int64_t b = blockIdx.z;
  const int64_t y0 = int64_t(blockIdx.y) * kTileH, x0 = int64_t(blockIdx.x) * kTileW;
  const int64_t oy = y0 - rad - 1, ox = x0 - rad - 1;
  const scalar_t* Rb = R + b * H * W;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x, nthreads = blockDim.x * blockDim.y;

  // window weights (computed in double exactly as on the CPU)
  if (tid < taps) {
    double sum = 0;
    for (int t = -rad; t <= rad; ++t) sum += gaussian_weight(t, sigma);
    g[tid] = static_cast<acc>(gaussian_weight(tid - rad, sigma) / sum);
  }
  for (int k = tid; k < th * tw; k += nthreads) {
    const int64_t gy = clamp_index<int64_t>(oy + k / tw, 0, H - 1);
    const int64_t gx = clamp_index<int64_t>(ox + k % tw, 0, W - 1);
    tile[k] = acc(Rb[gy * W + gx]);
  }
  __syncthreads();
  // R̂ at an in-grid (clamped) coordinate, read from the tile
  auto Rg = [&](int64_t gy, int64_t gx) { return tile[(gy - oy) * tw + (gx - ox)]; };
  // horizontal window of the gradient products (replicate borders = clamped coordinates)
  for (int k = tid; k < hrows * kTileW; k += nthreads) {
    const int i = k / kTileW, j = k % kTileW;
    const int64_t y = clamp_index<int64_t>(y0 - rad + i, 0, H - 1);
    const int64_t yu = clamp_index<int64_t>(y - 1, 0, H - 1),
                  yd = clamp_index<int64_t>(y + 1, 0, H - 1);
    acc axx = 0, axy = 0, ayy = 0;
    for (int t = 0; t < taps; ++t) {
      const int64_t x = clamp_index<int64_t>(x0 + j + t - rad, 0, W - 1);
      const acc ix = (Rg(y, clamp_index<int64_t>(x + 1, 0, W - 1)) -
                      Rg(y, clamp_index<int64_t>(x - 1, 0, W - 1))) *
                     acc(0.5);
      const acc iy = (Rg(yd, x) - Rg(yu, x)) * acc(0.5);
      axx += g[t] * (ix * ix);
      axy += g[t] * (ix * iy);
      ayy += g[t] * (iy * iy);
    }
    hb[k] = axx;
    hb[hrows * kTileW + k] = axy;
    hb[2 * hrows * kTileW + k] = ayy;
  }
  __syncthreads();
  // vertical window and λ2
  for (int k = tid; k < kTileH * kTileW; k += nthreads) {
    const int i = k / kTileW, j = k % kTileW;
    const int64_t y = y0 + i, x = x0 + j;
    if (y >= H || x >= W) continue;
    acc a = 0, bb = 0, c = 0;
    for (int t = 0; t < taps; ++t) {
      const int r = (i + t) * kTileW + j;  // hb row (y + t − rad) − (y0 − rad)
      a += g[t] * hb[r];
      bb += g[t] * hb[hrows * kTileW + r];
      c += g[t] * hb[2 * hrows * kTileW + r];
    }
    lam[b * H * W + y * W + x] = st_lambda2<acc>(a, bb, c);
  }
}

template <typename acc>
__global__ void nms_keys_kernel(const acc* __restrict__ lam, const uint8_t* __restrict__ bld,
                                int64_t* __restrict__ keys, int64_t B, int64_t H, int64_t W,
                                acc min_response) {
  const int64_t n = H * W;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < B * n;
       k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t b = k / n, i = k % n, r = i / W, c = i % W;
    const acc* L = lam + b * n;
    const acc v = L[i];
    bool keep = bld[k] == 0 && v > min_response;
    if (keep)
      keep =
          nms3x3_keep<acc>(v, r, c, H, W, [&](int64_t rr, int64_t cc) { return L[rr * W + cc]; });
    keys[k] = keep ? point_key(static_cast<float>(v), i) : int64_t(0);
  }
}

template <typename scalar_t>
__global__ void decode_kernel(const int64_t* __restrict__ top,
                              const acc_t<scalar_t>* __restrict__ lam, int64_t n, int64_t W,
                              int64_t capacity, int64_t* __restrict__ points,
                              scalar_t* __restrict__ response, int64_t* __restrict__ count) {
  __shared__ int total;
  const int64_t b = blockIdx.x;
  if (threadIdx.x == 0) total = 0;
  __syncthreads();
  int mine = 0;
  for (int64_t j = threadIdx.x; j < capacity; j += blockDim.x) {
    const int64_t key = top[b * capacity + j];
    const bool ok = key > 0;
    const int64_t idx = ok ? key_index(key) : 0;
    points[(b * capacity + j) * 2] = ok ? idx / W : -1;
    points[(b * capacity + j) * 2 + 1] = ok ? idx % W : -1;
    response[b * capacity + j] = ok ? scalar_t(lam[b * n + idx]) : scalar_t(0);
    mine += ok;
  }
  atomicAdd(&total, mine);
  __syncthreads();
  if (threadIdx.x == 0) count[b] = total;
}

}  // namespace

void launch_critical_keys_kernel(const at::TensorBase& R_hat, const at::TensorBase& buildings,
                                 double sigma, double min_response, const at::TensorBase& lam2,
                                 const at::TensorBase& keys) {
  const c10::cuda::CUDAGuard guard(R_hat.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t B = R_hat.size(0), H = R_hat.size(1), W = R_hat.size(2);
  const int rad = window_radius(sigma);
  TORCH_CHECK(B <= 65535, "the CUDA detector handles at most 65535 maps per call");
  TORCH_CHECK((H + kTileH - 1) / kTileH <= 65535, "the CUDA detector handles maps of at most ",
              int64_t(65535) * kTileH, " rows");
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, R_hat.scalar_type(), "critical_points_cuda", [&] {
        using acc = acc_t<scalar_t>;
        const int taps = 2 * rad + 1;
        const size_t smem =
            sizeof(acc) * (taps + size_t(kTileH + 2 * rad + 2) * (kTileW + 2 * rad + 2) +
                           size_t(3) * (kTileH + 2 * rad) * kTileW);
        // above the default 48 KiB a kernel must opt in to the device's larger shared memory
        if (smem > 48 * 1024) {
          int dev_max = 0;
          C10_CUDA_CHECK(cudaDeviceGetAttribute(&dev_max, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                                R_hat.device().index()));
          TORCH_CHECK(smem <= size_t(dev_max), "sigma=", sigma, " needs ", smem,
                      " bytes of shared memory per tile; this device allows ", dev_max,
                      " (use the triton or reference backend)");
          C10_CUDA_CHECK(cudaFuncSetAttribute(
              lambda2_kernel<scalar_t>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
        }
        const dim3 grid((W + kTileW - 1) / kTileW, (H + kTileH - 1) / kTileH, B);
        const dim3 block(kTileW, 8);
        lambda2_kernel<scalar_t><<<grid, block, smem, stream>>>(
            R_hat.const_data_ptr<scalar_t>(), lam2.mutable_data_ptr<acc>(), H, W, rad, sigma);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        nms_keys_kernel<acc><<<grid_stride_blocks(B * H * W, 256), 256, 0, stream>>>(
            lam2.const_data_ptr<acc>(), buildings.const_data_ptr<uint8_t>(),
            keys.mutable_data_ptr<int64_t>(), B, H, W, static_cast<acc>(min_response));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
}

void launch_critical_decode_kernel(const at::TensorBase& top_keys, const at::TensorBase& lam2,
                                   int64_t W, const at::TensorBase& points,
                                   const at::TensorBase& response, const at::TensorBase& count) {
  const c10::cuda::CUDAGuard guard(top_keys.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t B = top_keys.size(0), capacity = top_keys.size(1);
  const int64_t n = lam2.numel() / B;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, response.scalar_type(), "critical_decode_cuda", [&] {
        using acc = acc_t<scalar_t>;
        decode_kernel<scalar_t><<<B, 128, 0, stream>>>(
            top_keys.const_data_ptr<int64_t>(), lam2.const_data_ptr<acc>(), n, W, capacity,
            points.mutable_data_ptr<int64_t>(), response.mutable_data_ptr<scalar_t>(),
            count.mutable_data_ptr<int64_t>());
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace wifidiff
