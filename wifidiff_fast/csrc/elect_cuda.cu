// elect CUDA kernels; the per-candidate physics comes from elect.h (double precision).
// (1) elect_score_kernel: one 256-thread block per candidate: block reductions for L_s, D and the
//     open maximum; n_tx block-wide arg-best passes for the transmitters; thread 0 does the Friis
//     rings (a few hundred samples), all threads share the rays; thread 0 writes the score.
// (2) elect_spread_kernel: one thread per pixel, two passes over the K candidates.
// (3) elect_argmin_kernel: one block per map (NaN = +inf, ties to the lower k).
#include <ATen/Dispatch.h>
#include <ATen/core/TensorBase.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cmath>

#include "cuda_utils.cuh"
#include "elect.h"

namespace wifidiff {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxRings = 64;  // the operator checks n_rings <= 64

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    elect_score_kernel(const scalar_t* __restrict__ X, const acc_t<scalar_t>* __restrict__ Rp,
                       const acc_t<scalar_t>* __restrict__ Sp,
                       const acc_t<scalar_t>* __restrict__ Mp, const uint8_t* __restrict__ Bp,
                       const acc_t<scalar_t>* __restrict__ Ap, ElectGeometry g, int64_t K,
                       int64_t H, int64_t W, double* __restrict__ score64,
                       float* __restrict__ scores) {
  __shared__ double sh_d[32];
  __shared__ int64_t sh_i[32];
  __shared__ int64_t tx[64];
  const int64_t bk = blockIdx.x, b = bk / K, n = H * W;
  const scalar_t* x = X + bk * n;
  const auto *R_hat_b = Rp + b * n, *Sv = Sp + b * n, *Mv = Mp + b * n;
  const uint8_t* bld = Bp + b * n;

  // 1. L_s, D and the open maximum
  double ls = 0, msum = 0, dsum = 0, osum = 0, mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    accumulate_pixel(double(x[i]), double(Sv[i]), double(Mv[i]), double(R_hat_b[i]), bld[i] == 0,
                     ls, msum, dsum, osum, mx);
  ls = block_sum(ls, sh_d);
  msum = block_sum(msum, sh_d);
  dsum = block_sum(dsum, sh_d);
  osum = block_sum(osum, sh_d);
  int64_t dummy = 0;
  block_best(mx, dummy, sh_d, sh_i);
  const double thr = mx - g.tx_drop;

  // 2. transmitters: n_tx passes; each takes the best open 3×3 maximum after the previous pick
  auto x_open = [&](int64_t rr, int64_t cc) {
    const int64_t i = rr * W + cc;
    return bld[i] == 0 ? double(x[i]) : -INFINITY;
  };
  double prev_v = INFINITY;
  int64_t prev_i = -1;
  int ntx = 0;
  for (int t = 0; t < g.n_tx; ++t) {
    double bv = -INFINITY;
    int64_t bi = INT64_MAX;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      if (bld[i] != 0) continue;
      const double v = double(x[i]);
      if (!(v >= thr) || !(v < prev_v || (v == prev_v && i > prev_i))) continue;
      if (!better(v, i, bv, bi)) continue;
      if (nms3x3_keep<double>(v, i / W, i % W, H, W, x_open)) {
        bv = v;
        bi = i;
      }
    }
    block_best(bv, bi, sh_d, sh_i);
    if (bv == -INFINITY) break;
    if (threadIdx.x == 0) tx[t] = bi;
    prev_v = bv;
    prev_i = bi;
    ntx = t + 1;
  }
  __syncthreads();

  // 3. rays: (transmitter, ray) items shared by the threads
  auto xv = [&](int64_t i) { return double(x[i]); };
  auto is_open = [&](int64_t i) { return bld[i] == 0; };
  int64_t steps = 0, vol = 0;
  for (int item = threadIdx.x; item < ntx * g.n_rays; item += blockDim.x) {
    const int t = item / g.n_rays, q = item % g.n_rays;
    ray_probe(tx[t] / W, tx[t] % W, g.ray_off + 2 * q * (g.ray_len + 1), g.ray_len, H, W, g.tau, xv,
              is_open, steps, vol);
  }
  const double steps_all = block_sum(double(steps), sh_d);
  const double vol_all = block_sum(double(vol), sh_d);

  // 4. Friis rings (thread 0: n_tx · n_rings · n_angles samples) and the score
  if (threadIdx.x == 0) {
    double m[kMaxRings];
    int cnt[kMaxRings];
    double ring_sq = 0;
    int64_t ring_terms = 0;
    for (int t = 0; t < ntx; ++t) {
      for (int j = 0; j < g.n_rings; ++j)
        m[j] = ring_mean(tx[t] / W, tx[t] % W, g.ring_off + 2 * j * g.n_angles, g.n_angles, H, W,
                         xv, is_open, cnt[j]);
      friis_terms(m, cnt, g.ring_drop, g.n_rings, ring_sq, ring_terms);
    }
    const double s = elect_score(ls, msum, dsum, osum, double(Ap[b]), ring_sq, ring_terms,
                                 int64_t(vol_all), int64_t(steps_all), g);
    score64[bk] = s;
    scores[bk] = float(s);
  }
}

template <typename scalar_t>
__global__ void elect_spread_kernel(const scalar_t* __restrict__ X, const uint8_t* __restrict__ Bp,
                                    float* __restrict__ spread, int64_t B, int64_t K, int64_t n,
                                    double scale) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < B * n;
       k += int64_t(blockDim.x) * gridDim.x) {
    const int64_t b = k / n, i = k % n;
    const scalar_t* x = X + b * K * n + i;
    double s1 = 0;
    for (int64_t c = 0; c < K; ++c) s1 += double(x[c * n]);
    const double mean = s1 / double(K);
    double s2 = 0;
    for (int64_t c = 0; c < K; ++c) {
      const double d = double(x[c * n]) - mean;
      s2 += d * d;
    }
    spread[k] = Bp[k] == 0 ? float(sqrt(s2 / double(K)) * scale) : 0.0f;
  }
}

__global__ void elect_argmin_kernel(const double* __restrict__ score64, int64_t K,
                                    int64_t* __restrict__ elected) {
  __shared__ double sh_d[32];
  __shared__ int64_t sh_i[32];
  const int64_t b = blockIdx.x;
  double best = -INFINITY;  // arg-best of −score: larger −score = smaller score
  int64_t bi = INT64_MAX;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const double s = score64[b * K + k];
    const double v = isnan(s) ? -INFINITY : -s;
    if (better(v, k, best, bi)) {
      best = v;
      bi = k;
    }
  }
  block_best(best, bi, sh_d, sh_i);
  if (threadIdx.x == 0) elected[b] = bi == INT64_MAX ? 0 : bi;
}

}  // namespace

void launch_elect_kernel(const at::TensorBase& candidates, const at::TensorBase& R_hat,
                         const at::TensorBase& S, const at::TensorBase& M,
                         const at::TensorBase& buildings, const at::TensorBase& alpha,
                         const ElectGeometry& g, const at::TensorBase& score64,
                         const at::TensorBase& scores, const at::TensorBase& elected,
                         const at::TensorBase& spread) {
  const c10::cuda::CUDAGuard guard(candidates.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t B = candidates.size(0), K = candidates.size(1), H = candidates.size(2),
                W = candidates.size(3), n = H * W;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, candidates.scalar_type(), "elect_cuda", [&] {
        using acc = acc_t<scalar_t>;
        elect_score_kernel<scalar_t><<<B * K, kThreads, 0, stream>>>(
            candidates.const_data_ptr<scalar_t>(), R_hat.const_data_ptr<acc>(),
            S.const_data_ptr<acc>(), M.const_data_ptr<acc>(), buildings.const_data_ptr<uint8_t>(),
            alpha.const_data_ptr<acc>(), g, K, H, W, score64.mutable_data_ptr<double>(),
            scores.mutable_data_ptr<float>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        const int64_t blocks = grid_stride_blocks(B * n, 256);
        elect_spread_kernel<scalar_t><<<blocks, 256, 0, stream>>>(
            candidates.const_data_ptr<scalar_t>(), buildings.const_data_ptr<uint8_t>(),
            spread.mutable_data_ptr<float>(), B, K, n, g.spread_scale);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  elect_argmin_kernel<<<B, 128, 0, stream>>>(score64.const_data_ptr<double>(), K,
                                             elected.mutable_data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace wifidiff
