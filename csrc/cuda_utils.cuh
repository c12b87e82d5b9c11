// Block-wide reductions for the CUDA kernels (256-thread blocks or any multiple of 32).
#pragma once

#include <cstdint>

namespace wifidiff {

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
    if (better(ov, oi, v, i)) { v = ov; i = oi; }
  }
  __syncthreads();
  if (lane == 0) { shm_v[wid] = v; shm_i[wid] = i; }
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? shm_v[lane] : -INFINITY;
    i = lane < nw ? shm_i[lane] : INT64_MAX;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const double ov = __shfl_down_sync(0xffffffffu, v, o);
      const int64_t oi = __shfl_down_sync(0xffffffffu, i, o);
      if (better(ov, oi, v, i)) { v = ov; i = oi; }
    }
    if (lane == 0) { shm_v[0] = v; shm_i[0] = i; }
  }
  __syncthreads();
  v = shm_v[0];
  i = shm_i[0];
  __syncthreads();
}

}  // namespace wifidiff
