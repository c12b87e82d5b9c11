// Election scoring (spec: wifidiff_fast/reference/elect.py::elect_ref).
// The per-candidate physics (transmitter list, Friis rings, ray probes, the final score) is
// written once here, in double precision, and used by elect.cpp (CPU) and elect_cuda.cu.
#pragma once

#include <ATen/core/TensorBase.h>

#include <cstdint>

#include "common.h"

namespace wifidiff {

// Scalars and device/host pointers to the integer geometry tables (reference.elect:
// ring_offsets [n_rings, n_angles, 2], friis_drop [n_rings] fp64,
// ray_offsets [n_rays, ray_len + 1, 2], ray_len = H + W).
struct ElectGeometry {
  const int32_t* ring_off;
  const double* ring_drop;
  const int32_t* ray_off;
  int n_rings, n_angles, n_rays, ray_len, n_tx;
  double tx_drop, tau, lam, gamma, spread_scale;
};

// One pixel's share of the sample error L_s (Σ M·(x − S)², Σ M), of the correction term D
// (Σ_open (x − R̂)², Σ_open 1) and of the open maximum (transmitter threshold).
WD_HD void accumulate_pixel(double v, double s, double m, double r, bool open, double& ls,
                            double& msum, double& dsum, double& osum, double& mx) {
  const double e = v - s;
  ls += m * e * e;
  msum += m;
  if (open) {
    const double d = v - r;
    dsum += d * d;
    osum += 1.0;
    mx = v > mx ? v : mx;
  }
}

// Keep the n_tx best (value desc, index asc) of the points offered so far; tv/ti sorted.
WD_HD void tx_offer(double v, int64_t i, double* tv, int64_t* ti, int& n, int cap) {
  int pos = n < cap ? n : cap;
  while (pos > 0 && (v > tv[pos - 1] || (v == tv[pos - 1] && i < ti[pos - 1]))) --pos;
  if (pos >= cap) return;
  const int last = n < cap ? n : cap - 1;
  for (int j = last; j > pos; --j) {
    tv[j] = tv[j - 1];
    ti[j] = ti[j - 1];
  }
  tv[pos] = v;
  ti[pos] = i;
  if (n < cap) ++n;
}

// Mean of x over the valid (on-grid, open) points of one ring; n = their number.
template <typename X, typename O>
WD_HD double ring_mean(int64_t r0, int64_t c0, const int32_t* off, int n_angles, int64_t H,
                       int64_t W, const X& x, const O& is_open, int& n) {
  double s = 0;
  n = 0;
  for (int a = 0; a < n_angles; ++a) {
    const int64_t r = r0 + off[2 * a], c = c0 + off[2 * a + 1];
    if (r < 0 || r >= H || c < 0 || c >= W) continue;
    const int64_t i = r * W + c;
    if (!is_open(i)) continue;
    s += x(i);
    ++n;
  }
  return n > 0 ? s / n : 0.0;
}

// Friis ring comparison of one transmitter: adds Σ_j>1 (m_j − (m_1 − drop_j))² and the number
// of terms (rings with no valid point are skipped; an empty first ring skips the transmitter).
WD_HD void friis_terms(const double* m, const int* n, const double* drop, int n_rings, double& sq,
                       int64_t& terms) {
  if (n[0] == 0) return;
  for (int j = 1; j < n_rings; ++j) {
    if (n[j] == 0) continue;
    const double d = m[j] - (m[0] - drop[j]);
    sq += d * d;
    ++terms;
  }
}

// One probe ray from (r0, c0): march the offset table until a building or the edge; count the
// visited steps and the volatile ones (|Δx| > tau).
template <typename X, typename O>
WD_HD void ray_probe(int64_t r0, int64_t c0, const int32_t* off, int ray_len, int64_t H, int64_t W,
                     double tau, const X& x, const O& is_open, int64_t& steps, int64_t& vol) {
  double prev = x(r0 * W + c0);
  for (int s = 1; s <= ray_len; ++s) {
    const int64_t r = r0 + off[2 * s], c = c0 + off[2 * s + 1];
    if (r < 0 || r >= H || c < 0 || c >= W) return;
    const int64_t i = r * W + c;
    if (!is_open(i)) return;
    const double v = x(i);
    ++steps;
    const double d = v - prev;
    if ((d < 0 ? -d : d) > tau) ++vol;
    prev = v;
  }
}

// score = L_s + α·D + λ·(ring_term + γ·ray_term)
WD_HD double elect_score(double ls, double msum, double dsum, double osum, double alpha,
                         double ring_sq, int64_t ring_terms, int64_t vol, int64_t steps,
                         const ElectGeometry& g) {
  const double L_s = ls / (msum > 1.0 ? msum : 1.0);
  const double D = dsum / (osum > 1.0 ? osum : 1.0);
  const double ring = ring_sq / double(ring_terms > 1 ? ring_terms : 1);
  const double ray = double(vol) / double(steps > 1 ? steps : 1);
  return L_s + alpha * D + g.lam * (ring + g.gamma * ray);
}

// CPU body (elect.cpp).
void elect_cpu(const at::TensorBase& candidates, const at::TensorBase& R_hat,
               const at::TensorBase& S, const at::TensorBase& M, const at::TensorBase& buildings,
               const at::TensorBase& alpha, const ElectGeometry& g, const at::TensorBase& scores,
               const at::TensorBase& elected, const at::TensorBase& spread);

// CUDA launcher (elect_cuda.cu).
// score64 is a [B, K] fp64 scratch (the arg-min runs on the fp64 scores, as on the CPU).
void launch_elect_kernel(const at::TensorBase& candidates, const at::TensorBase& R_hat,
                         const at::TensorBase& S, const at::TensorBase& M,
                         const at::TensorBase& buildings, const at::TensorBase& alpha,
                         const ElectGeometry& g, const at::TensorBase& score64,
                         const at::TensorBase& scores, const at::TensorBase& elected,
                         const at::TensorBase& spread);

}  // namespace wifidiff
