// Critical-point detector (spec: wifidiff_fast/reference/critical_points.py).
// The per-pixel math (window weights, closed-form λ2, the 3×3 NMS tie rule, the selection key) is
// written once here and used by critical_points.cpp (CPU) and critical_points_cuda.cu.
#pragma once

#include <ATen/core/TensorBase.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common.h"

namespace wifidiff {

// Radius of the Gaussian window, ceil(3σ) and at least 1 (reference.gaussian_kernel1d). The
// int cast of a huge ceil(3σ) is undefined behaviour: callers check window_fits first.
inline int window_radius(double sigma) {
  int r = static_cast<int>(std::ceil(3.0 * sigma));
  return r < 1 ? 1 : r;
}

// Whether the (2·ceil(3σ) + 1)² window fits an H×W map, computed in double (no int overflow).
inline bool window_fits(double sigma, int64_t H, int64_t W) {
  const double r = std::max(1.0, std::ceil(3.0 * sigma));
  return 2.0 * r + 1.0 <= static_cast<double>(std::min(H, W));
}

// Unnormalised weight of tap t (−r..r); callers divide by the sum over the window.
WD_HD double gaussian_weight(int t, double sigma) {
  const double u = static_cast<double>(t) / sigma;
#if defined(__CUDA_ARCH__)
  return ::exp(-0.5 * u * u);
#else
  return std::exp(-0.5 * u * u);
#endif
}

// λ2 = (a + c)/2 − sqrt(((a − c)/2)² + b²) of J = [[a, b], [b, c]], clamped at 0.
template <typename acc>
WD_HD acc st_lambda2(acc a, acc b, acc c) {
  const acc h = (a - c) * acc(0.5);
  const acc l = (a + c) * acc(0.5) - wd_sqrt(h * h + b * b);
  return l < acc(0) ? acc(0) : l;  // NaN stays NaN, as torch.clamp_min
}

// Selection key of a valid point: larger response first, then lower linear index. Responses
// are > 0, so their fp32 bit patterns order like the values (fp64 responses are ordered by their
// fp32 rounding, ties within fp32 precision to the lower index). 0 = not a point.
// Key layout: (fp32 bits of the response) << 32 | (kKeyIndexMask − linear index); the Triton
// kernel uses the same layout (KEY_INDEX_MASK in kernels/critical_points.py).
constexpr uint64_t kKeyIndexMask = 0xFFFFFFFFull;
WD_HD int64_t point_key(float response, int64_t idx) {
  const uint32_t bits = float_bits(response);
  return static_cast<int64_t>((static_cast<uint64_t>(bits) << 32) |
                              (kKeyIndexMask - static_cast<uint64_t>(idx)));
}
WD_HD int64_t key_index(int64_t key) {
  return static_cast<int64_t>(kKeyIndexMask - (static_cast<uint64_t>(key) & kKeyIndexMask));
}

// CPU bodies (critical_points.cpp).
void critical_points_cpu(const at::TensorBase& R_hat, const at::TensorBase& buildings, double sigma,
                         double min_response, const at::TensorBase& points,
                         const at::TensorBase& response, const at::TensorBase& count);

// CUDA launchers (critical_points_cuda.cu). Detection is split around a top-k that the operator
// runs with at::topk on the keys: (1) λ2 map + NMS -> keys [B, H·W], (2) decode the top keys.
void launch_critical_keys_kernel(const at::TensorBase& R_hat, const at::TensorBase& buildings,
                                 double sigma, double min_response, const at::TensorBase& lam2,
                                 const at::TensorBase& keys);
void launch_critical_decode_kernel(const at::TensorBase& top_keys, const at::TensorBase& lam2,
                                   int64_t W, const at::TensorBase& points,
                                   const at::TensorBase& response, const at::TensorBase& count);

}  // namespace wifidiff
