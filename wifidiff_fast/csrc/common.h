// Shared by the C++ (CPU) and CUDA translation units: no torch/extension.h, no CUDA runtime.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define WD_HD __host__ __device__ __forceinline__
#else
#define WD_HD inline
#endif

namespace wifidiff {

// Accumulation type: fp32 for fp16/bf16/fp32 inputs, fp64 for fp64 (the oracle path).
template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <typename T>
using acc_t = typename AccType<T>::type;

template <typename T>
WD_HD T clamp_index(T i, T lo, T hi) {
  return i < lo ? lo : (i > hi ? hi : i);
}

// 3×3 NMS with the lower-linear-index-wins tie rule: v must be > the neighbours that come
// before it in row-major order and >= the ones after. at(rr, cc) returns the neighbour's value,
// or −inf for neighbours that do not compete (off-grid; buildings in the election).
template <typename acc, typename F>
WD_HD bool nms3x3_keep(acc v, int64_t r, int64_t c, int64_t H, int64_t W, const F& at) {
#pragma unroll
  for (int dr = -1; dr <= 1; ++dr) {
#pragma unroll
    for (int dc = -1; dc <= 1; ++dc) {
      if (dr == 0 && dc == 0) continue;
      const int64_t rr = r + dr, cc = c + dc;
      if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
      const acc n = at(rr, cc);
      const bool earlier = dr < 0 || (dr == 0 && dc < 0);
      if (earlier ? !(v > n) : !(v >= n)) return false;
    }
  }
  return true;
}

WD_HD float wd_sqrt(float v) {
#if defined(__CUDA_ARCH__)
  // correctly rounded even under --use_fast_math (which turns sqrtf into sqrt.approx): λ2 is a
  // cancellation, and an approximate root turns exact 1-D structure (λ2 = 0) into false points
  return __fsqrt_rn(v);
#else
  return std::sqrt(v);
#endif
}
WD_HD double wd_sqrt(double v) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(v);
#else
  return std::sqrt(v);
#endif
}

WD_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
#endif
}

}  // namespace wifidiff
