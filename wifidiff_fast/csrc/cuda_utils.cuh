// Launch sizing and block-wide reductions for the CUDA kernels (256-thread blocks or any
// multiple of 32).
#pragma once

#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>

namespace wifidiff {

// Blocks of a grid-stride loop over n items: enough for every SM of the current device to hold
// kBlocksPerSm of them, and no more (extra blocks would only loop zero times). The SM count is
// queried per launch (a host-side attribute lookup, no stream work: graph-capture safe); the
// caller's CUDAGuard has made the tensors' device current.
constexpr int64_t kBlocksPerSm = 32;
inline int64_t grid_stride_blocks(int64_t n, int threads) {
  int device = 0, sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t needed = (n + threads - 1) / threads;
  return std::max<int64_t>(1, std::min<int64_t>(needed, int64_t(sms) * kBlocksPerSm));
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block, returned to every thread. shm: 32 slots of T.
template <typename T>
__device__ T block_sum(T v, T* shm) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shm[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? shm[lane] : T(0);
    v = warp_sum(v);
    if (lane == 0) shm[0] = v;
  }
  __syncthreads();
  return shm[0];
}

// Best (value desc, index asc) pair over the block, returned to every thread.
__device__ __forceinline__ bool better(double v, int64_t i, double bv, int64_t bi) {
  return v > bv || (v == bv && i < bi);
}

__device__ void block_best(double& v, int64_t& i, double* shm_v, int64_t* shm_i) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const double ov = __shfl_down_sync(0xffffffffu, v, o);
    const int64_t oi = __shfl_down_sync(0xffffffffu, i, o);
    if (better(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
  __syncthreads();
  if (lane == 0) {
    shm_v[wid] = v;
    shm_i[wid] = i;
  }
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? shm_v[lane] : -INFINITY;
    i = lane < nw ? shm_i[lane] : INT64_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const double ov = __shfl_down_sync(0xffffffffu, v, o);
      const int64_t oi = __shfl_down_sync(0xffffffffu, i, o);
      if (better(ov, oi, v, i)) {
        v = ov;
        i = oi;
      }
    }
    if (lane == 0) {
      shm_v[0] = v;
      shm_i[0] = i;
    }
  }
  __syncthreads();
  v = shm_v[0];
  i = shm_i[0];
  __syncthreads();
}

}  // namespace wifidiff
