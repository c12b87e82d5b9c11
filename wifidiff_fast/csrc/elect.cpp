// elect: operator (checks, allocation, dispatch) and CPU body.
// CPU: one candidate per task for the scores (a reduction pass, a transmitter pass over the
// pixels near the maximum, then the rings and rays of elect.h), and row blocks for the spread.
// Accumulation in double (the candidates are read in their own dtype).
#include "elect.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "checks.h"
#include "registration.h"

namespace wifidiff {

void elect_cpu(const at::TensorBase& candidates, const at::TensorBase& R_hat,
               const at::TensorBase& S, const at::TensorBase& M, const at::TensorBase& buildings,
               const at::TensorBase& alpha, const ElectGeometry& g, const at::TensorBase& scores,
               const at::TensorBase& elected, const at::TensorBase& spread) {
  const int64_t B = candidates.size(0), K = candidates.size(1), H = candidates.size(2),
                W = candidates.size(3), n = H * W;
  std::vector<double> score(B * K);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, candidates.scalar_type(), "elect_cpu", [&] {
        using acc = acc_t<scalar_t>;
        const scalar_t* X = candidates.const_data_ptr<scalar_t>();
        const acc* Rp = R_hat.const_data_ptr<acc>();
        const acc* Sp = S.const_data_ptr<acc>();
        const acc* Mp = M.const_data_ptr<acc>();
        const acc* Ap = alpha.const_data_ptr<acc>();
        const uint8_t* Bp = buildings.const_data_ptr<uint8_t>();
        constexpr double kNegInf = -std::numeric_limits<double>::infinity();

        at::parallel_for(0, B * K, 1, [&](int64_t begin, int64_t end) {
          std::vector<double> tv(g.n_tx), m(g.n_rings);
          std::vector<int64_t> ti(g.n_tx);
          std::vector<int> cnt(g.n_rings);
          for (int64_t bk = begin; bk < end; ++bk) {
            const int64_t b = bk / K;
            const scalar_t* x = X + bk * n;
            const acc *R_hat_b = Rp + b * n, *Sv = Sp + b * n, *Mv = Mp + b * n;
            const uint8_t* bld = Bp + b * n;
            // L_s, D and the open maximum in one pass
            double ls = 0, msum = 0, dsum = 0, osum = 0, mx = kNegInf;
            for (int64_t i = 0; i < n; ++i)
              accumulate_pixel(double(x[i]), double(Sv[i]), double(Mv[i]), double(R_hat_b[i]),
                               bld[i] == 0, ls, msum, dsum, osum, mx);
            // transmitters: open 3×3 maxima (buildings do not compete) near the maximum
            const double thr = mx - g.tx_drop;
            auto xv = [&](int64_t i) { return double(x[i]); };
            auto is_open = [&](int64_t i) { return bld[i] == 0; };
            auto x_open = [&](int64_t rr, int64_t cc) {
              const int64_t i = rr * W + cc;
              return bld[i] == 0 ? double(x[i]) : kNegInf;
            };
            int ntx = 0;
            for (int64_t i = 0; i < n; ++i) {
              if (bld[i] != 0) continue;
              const double v = double(x[i]);
              if (!(v >= thr)) continue;
              if (nms3x3_keep<double>(v, i / W, i % W, H, W, x_open))
                tx_offer(v, i, tv.data(), ti.data(), ntx, g.n_tx);
            }
            // Friis rings and ray probes around each transmitter
            double ring_sq = 0;
            int64_t ring_terms = 0, steps = 0, vol = 0;
            for (int t = 0; t < ntx; ++t) {
              const int64_t r0 = ti[t] / W, c0 = ti[t] % W;
              for (int j = 0; j < g.n_rings; ++j)
                m[j] = ring_mean(r0, c0, g.ring_off + 2 * j * g.n_angles, g.n_angles, H, W, xv,
                                 is_open, cnt[j]);
              friis_terms(m.data(), cnt.data(), g.ring_drop, g.n_rings, ring_sq, ring_terms);
              for (int q = 0; q < g.n_rays; ++q)
                ray_probe(r0, c0, g.ray_off + 2 * q * (g.ray_len + 1), g.ray_len, H, W, g.tau, xv,
                          is_open, steps, vol);
            }
            score[bk] = elect_score(ls, msum, dsum, osum, double(Ap[b]), ring_sq, ring_terms, vol,
                                    steps, g);
          }
        });

        // spread: population std over K, two passes, in row blocks of each map
        float* sp = spread.mutable_data_ptr<float>();
        constexpr int64_t kChunk = 2048;
        const int64_t chunks = (n + kChunk - 1) / kChunk;
        at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
          std::vector<double> s1(kChunk), s2(kChunk);
          for (int64_t job = begin; job < end; ++job) {
            const int64_t b = job / chunks, lo = (job % chunks) * kChunk;
            const int64_t len = std::min<int64_t>(kChunk, n - lo);
            std::fill(s1.begin(), s1.begin() + len, 0.0);
            std::fill(s2.begin(), s2.begin() + len, 0.0);
            for (int64_t k = 0; k < K; ++k) {
              const scalar_t* x = X + (b * K + k) * n + lo;
              for (int64_t c = 0; c < len; ++c) s1[c] += double(x[c]);
            }
            for (int64_t c = 0; c < len; ++c) s1[c] /= double(K);
            for (int64_t k = 0; k < K; ++k) {
              const scalar_t* x = X + (b * K + k) * n + lo;
              for (int64_t c = 0; c < len; ++c) {
                const double d = double(x[c]) - s1[c];
                s2[c] += d * d;
              }
            }
            const uint8_t* bld = Bp + b * n + lo;
            float* out = sp + b * n + lo;
            for (int64_t c = 0; c < len; ++c)
              out[c] = bld[c] == 0 ? float(std::sqrt(s2[c] / double(K)) * g.spread_scale) : 0.0f;
          }
        });
      });
  // scores and the arg-min (first minimum = lower k; NaN counts as +inf)
  float* sc = scores.mutable_data_ptr<float>();
  int64_t* el = elected.mutable_data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t best = 0;
    double best_v = std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < K; ++k) {
      const double v = score[b * K + k];
      sc[b * K + k] = float(v);
      const double key = std::isnan(v) ? std::numeric_limits<double>::infinity() : v;
      if (k == 0 || key < best_v) {
        best = k;
        best_v = key;
      }
    }
    el[b] = best;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> elect(
    const at::Tensor& candidates, const at::Tensor& R_hat, const at::Tensor& S, const at::Tensor& M,
    const at::Tensor& buildings, const at::Tensor& alpha, const at::Tensor& ring_off,
    const at::Tensor& ring_drop, const at::Tensor& ray_off, int64_t n_tx, double tx_drop,
    double tau, double lam, double gamma, double spread_scale) {
  WD_CHECK_FLOAT(candidates);
  WD_CHECK_DIM(candidates, 4);
  WD_CHECK_NONEMPTY(candidates);
  WD_CHECK_CONTIG(candidates);
  const int64_t B = candidates.size(0), K = candidates.size(1), H = candidates.size(2),
                W = candidates.size(3);
  const auto acc_dtype = candidates.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  for (const at::Tensor* t : {&R_hat, &S, &M}) {
    TORCH_CHECK_TYPE(t->scalar_type() == acc_dtype, "R_hat, S and M must be ", acc_dtype, ", got ",
                     t->scalar_type());
    TORCH_CHECK(t->dim() == 3 && t->size(0) == B && t->size(1) == H && t->size(2) == W,
                "R_hat, S and M must be [B, H, W] = [", B, ", ", H, ", ", W, "], got ", t->sizes());
    TORCH_CHECK(t->device() == candidates.device(), "R_hat, S and M must be on ",
                candidates.device());
    TORCH_CHECK(t->is_contiguous(), "R_hat, S and M must be contiguous");
  }
  WD_CHECK_DTYPE(buildings, at::kByte);
  WD_CHECK_SHAPE(buildings, R_hat);
  WD_CHECK_DEVICE(buildings, candidates);
  WD_CHECK_CONTIG(buildings);
  WD_CHECK_DTYPE(alpha, acc_dtype);
  TORCH_CHECK(alpha.dim() == 1 && alpha.size(0) == B, "alpha must be [B], got ", alpha.sizes());
  WD_CHECK_DEVICE(alpha, candidates);
  WD_CHECK_CONTIG(alpha);
  WD_CHECK_DTYPE(ring_off, at::kInt);
  TORCH_CHECK(ring_off.dim() == 3 && ring_off.size(0) >= 1 && ring_off.size(1) >= 1 &&
                  ring_off.size(2) == 2,
              "ring_off must be [n_rings, n_angles, 2], got ", ring_off.sizes());
  WD_CHECK_DTYPE(ring_drop, at::kDouble);
  TORCH_CHECK(ring_drop.dim() == 1 && ring_drop.size(0) == ring_off.size(0),
              "ring_drop must be [n_rings]");
  WD_CHECK_DTYPE(ray_off, at::kInt);
  TORCH_CHECK(ray_off.dim() == 3 && ray_off.size(0) >= 1 && ray_off.size(1) == H + W + 1 &&
                  ray_off.size(2) == 2,
              "ray_off must be [n_rays, H + W + 1, 2], got ", ray_off.sizes());
  for (const at::Tensor* t : {&ring_off, &ring_drop, &ray_off}) {
    TORCH_CHECK(t->device() == candidates.device(), "geometry tables must be on ",
                candidates.device());
    TORCH_CHECK(t->is_contiguous(), "geometry tables must be contiguous");
  }
  TORCH_CHECK(n_tx >= 1 && n_tx <= 64, "n_tx must be in 1..64, got ", n_tx);
  TORCH_CHECK(ring_off.size(0) <= 64, "at most 64 ring radii");
  TORCH_CHECK(tx_drop >= 0 && tau >= 0, "tx_drop and tau must be >= 0");
  ElectGeometry g{ring_off.const_data_ptr<int32_t>(),
                  ring_drop.const_data_ptr<double>(),
                  ray_off.const_data_ptr<int32_t>(),
                  int(ring_off.size(0)),
                  int(ring_off.size(1)),
                  int(ray_off.size(0)),
                  int(H + W),
                  int(n_tx),
                  tx_drop,
                  tau,
                  lam,
                  gamma,
                  spread_scale};
  auto f32 = candidates.options().dtype(at::kFloat);
  at::Tensor scores = at::empty({B, K}, f32);
  at::Tensor elected = at::empty({B}, candidates.options().dtype(at::kLong));
  at::Tensor spread = at::empty({B, H, W}, f32);
  if (candidates.is_cuda()) {
#ifdef WITH_CUDA
    at::Tensor score64 = at::empty({B, K}, candidates.options().dtype(at::kDouble));
    launch_elect_kernel(candidates, R_hat, S, M, buildings, alpha, g, score64, scores, elected,
                        spread);
#else
    TORCH_CHECK(false, "wifidiff_C was built without CUDA");
#endif
  } else {
    elect_cpu(candidates, R_hat, S, M, buildings, alpha, g, scores, elected, spread);
  }
  return {scores, elected, spread};
}

WD_REGISTER_OP(elect,
               "elect(Tensor candidates, Tensor R_hat, Tensor S, Tensor M, Tensor buildings,"
               " Tensor alpha, Tensor ring_off, Tensor ring_drop, Tensor ray_off, int n_tx,"
               " float tx_drop, float tau, float lam, float gamma,"
               " float spread_scale) -> (Tensor, Tensor, Tensor)")

}  // namespace wifidiff
