// critical_points: the operator (checks, allocation, dispatch by device) and the CPU body.
// CPU: one map per task (at::parallel_for over the batch); per map a row pipeline with rolling
// buffers (horizontal window → vertical window + λ2 → NMS) keeps the working set in L1/L2, then
// an exact top-k on the survivors. Inner loops are written to auto-vectorise.
#include "critical_points.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "checks.h"
#include "registration.h"

namespace wifidiff {
namespace {

template <typename scalar_t>
void critical_points_one_map(const scalar_t* R, const uint8_t* bld, int64_t H, int64_t W,
                             const std::vector<acc_t<scalar_t>>& g, int rad, double min_response,
                             int64_t capacity, std::vector<acc_t<scalar_t>>& work,
                             std::vector<std::pair<acc_t<scalar_t>, int64_t>>& cand, int64_t* pts,
                             scalar_t* resp, int64_t* count) {
  using acc = acc_t<scalar_t>;
  const int taps = 2 * rad + 1;
  const int64_t Wp = W + 2 * rad;
  // Rolling buffers (all L1/L2 resident): `taps` horizontally blurred rows per product channel,
  // one padded product row, three λ2 rows for the NMS, one row of vertical accumulators.
  work.resize(size_t(3) * taps * W + 3 * Wp + 3 * W + 3 * W);
  acc* hb = work.data();         // [3][taps][W], row y lives in slot y % taps
  acc* pad = hb + 3 * taps * W;  // [3][W + 2r]
  acc* col = pad + 3 * Wp;       // [3][W]
  acc* lam = col + 3 * W;        // [3][W], λ2 row y lives in slot y % 3
  const acc thr = static_cast<acc>(min_response);
  cand.clear();

  auto h_row = [&](int64_t y) {  // gradient products of row y, then the horizontal window
    const scalar_t* row = R + y * W;
    const scalar_t* up = R + std::max<int64_t>(y - 1, 0) * W;
    const scalar_t* dn = R + std::min<int64_t>(y + 1, H - 1) * W;
    acc *pxx = pad + rad, *pxy = pad + Wp + rad, *pyy = pad + 2 * Wp + rad;
    auto product = [&](int64_t c, acc ix) {
      const acc iy = (acc(dn[c]) - acc(up[c])) * acc(0.5);
      pxx[c] = ix * ix;
      pxy[c] = ix * iy;
      pyy[c] = iy * iy;
    };
    product(0, (acc(row[std::min<int64_t>(1, W - 1)]) - acc(row[0])) * acc(0.5));
    for (int64_t c = 1; c < W - 1; ++c) product(c, (acc(row[c + 1]) - acc(row[c - 1])) * acc(0.5));
    if (W > 1) product(W - 1, (acc(row[W - 1]) - acc(row[W - 2])) * acc(0.5));
    const int slot = int(y % taps);
    for (int ch = 0; ch < 3; ++ch) {
      acc* p = pad + ch * Wp;
      for (int k = 0; k < rad; ++k) {
        p[k] = p[rad];
        p[W + rad + k] = p[W + rad - 1];
      }
      acc* out = hb + (ch * taps + slot) * W;
      for (int64_t c = 0; c < W; ++c) out[c] = g[0] * p[c];
      for (int k = 1; k < taps; ++k) {
        const acc gk = g[k];
        const acc* src = p + k;
        for (int64_t c = 0; c < W; ++c) out[c] += gk * src[c];
      }
    }
  };
  auto v_row = [&](int64_t y) {  // vertical window (clamped rows) and λ2 of row y
    for (int ch = 0; ch < 3; ++ch) {
      acc* a = col + ch * W;
      for (int k = 0; k < taps; ++k) {
        const int64_t yy = clamp_index<int64_t>(y + k - rad, 0, H - 1);
        const acc gk = g[k];
        const acc* src = hb + (ch * taps + int(yy % taps)) * W;
        if (k == 0) {
          for (int64_t c = 0; c < W; ++c) a[c] = gk * src[c];
        } else {
          for (int64_t c = 0; c < W; ++c) a[c] += gk * src[c];
        }
      }
    }
    acc* out = lam + (y % 3) * W;
    for (int64_t c = 0; c < W; ++c) out[c] = st_lambda2<acc>(col[c], col[W + c], col[2 * W + c]);
  };
  auto nms_row = [&](int64_t y) {  // survivors of row y (needs λ2 rows y − 1 .. y + 1)
    const acc* mid = lam + (y % 3) * W;
    const acc* top = y > 0 ? lam + ((y + 2) % 3) * W : nullptr;
    const acc* bot = y < H - 1 ? lam + ((y + 1) % 3) * W : nullptr;
    const uint8_t* b = bld + y * W;
    for (int64_t c = 0; c < W; ++c) {
      const acc v = mid[c];
      if (b[c] != 0 || !(v > thr)) continue;
      // same rule as nms3x3_keep, row-local first (cheap rejections)
      if (c > 0 && !(v > mid[c - 1])) continue;
      if (c < W - 1 && !(v >= mid[c + 1])) continue;
      const int64_t cl = c > 0 ? c - 1 : c, cr = c < W - 1 ? c + 1 : c;
      bool keep = true;
      if (top)
        for (int64_t cc = cl; cc <= cr && keep; ++cc) keep = v > top[cc];
      if (bot)
        for (int64_t cc = cl; cc <= cr && keep; ++cc) keep = v >= bot[cc];
      if (keep) cand.emplace_back(v, y * W + c);
    }
  };
  // pipeline: h rows lead the v rows by rad, v rows lead the NMS rows by 1
  for (int64_t y = 0; y < std::min<int64_t>(rad, H); ++y) h_row(y);
  for (int64_t y = 0; y < H; ++y) {
    if (y + rad < H) h_row(y + rad);
    v_row(y);
    if (y >= 1) nms_row(y - 1);
  }
  nms_row(H - 1);

  const int64_t k = std::min<int64_t>(capacity, static_cast<int64_t>(cand.size()));
  auto better = [](const std::pair<acc, int64_t>& a, const std::pair<acc, int64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(cand.begin(), cand.begin() + k, cand.end(), better);
  for (int64_t j = 0; j < capacity; ++j) {
    const bool ok = j < k;
    pts[2 * j] = ok ? cand[j].second / W : -1;
    pts[2 * j + 1] = ok ? cand[j].second % W : -1;
    resp[j] = ok ? scalar_t(cand[j].first) : scalar_t(0);
  }
  *count = k;
}

void check_critical_inputs(const at::Tensor& R_hat, const at::Tensor& buildings, double sigma,
                           int64_t capacity, double min_response) {
  WD_CHECK_FLOAT(R_hat);
  WD_CHECK_DIM(R_hat, 3);
  WD_CHECK_NONEMPTY(R_hat);
  WD_CHECK_CONTIG(R_hat);
  WD_CHECK_DTYPE(buildings, at::kByte);
  WD_CHECK_SHAPE(buildings, R_hat);
  WD_CHECK_DEVICE(buildings, R_hat);
  WD_CHECK_CONTIG(buildings);
  TORCH_CHECK(sigma > 0 && std::isfinite(sigma), "sigma must be a finite float > 0, got ", sigma);
  TORCH_CHECK(capacity >= 1, "capacity must be >= 1, got ", capacity);
  TORCH_CHECK(min_response >= 0 && std::isfinite(min_response), "min_response must be >= 0");
  TORCH_CHECK(window_fits(sigma, R_hat.size(1), R_hat.size(2)), "R_hat is ", R_hat.size(1), "x",
              R_hat.size(2), ", smaller than the window of sigma=", sigma,
              " (2·ceil(3σ) + 1 pixels)");
  TORCH_CHECK(R_hat.size(1) * R_hat.size(2) < (int64_t(1) << 32), "maps must have < 2^32 pixels");
}

}  // namespace

void critical_points_cpu(const at::TensorBase& R_hat, const at::TensorBase& buildings, double sigma,
                         double min_response, const at::TensorBase& points,
                         const at::TensorBase& response, const at::TensorBase& count) {
  const int64_t B = R_hat.size(0), H = R_hat.size(1), W = R_hat.size(2);
  const int64_t capacity = response.size(1);
  const int rad = window_radius(sigma);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, R_hat.scalar_type(), "critical_points_cpu", [&] {
        using acc = acc_t<scalar_t>;
        std::vector<acc> g(2 * rad + 1);
        double sum = 0;
        for (int t = -rad; t <= rad; ++t) sum += gaussian_weight(t, sigma);
        for (int t = -rad; t <= rad; ++t)
          g[t + rad] = static_cast<acc>(gaussian_weight(t, sigma) / sum);
        const scalar_t* R = R_hat.const_data_ptr<scalar_t>();
        const uint8_t* bld = buildings.const_data_ptr<uint8_t>();
        int64_t* pts = points.mutable_data_ptr<int64_t>();
        scalar_t* resp = response.mutable_data_ptr<scalar_t>();
        int64_t* cnt = count.mutable_data_ptr<int64_t>();
        at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
          std::vector<acc> work;
          std::vector<std::pair<acc, int64_t>> cand;
          for (int64_t b = begin; b < end; ++b)
            critical_points_one_map<scalar_t>(R + b * H * W, bld + b * H * W, H, W, g, rad,
                                              min_response, capacity, work, cand,
                                              pts + b * capacity * 2, resp + b * capacity, cnt + b);
        });
      });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> critical_points(const at::Tensor& R_hat,
                                                               const at::Tensor& buildings,
                                                               double sigma, int64_t capacity,
                                                               double min_response) {
  check_critical_inputs(R_hat, buildings, sigma, capacity, min_response);
  const int64_t B = R_hat.size(0), H = R_hat.size(1), W = R_hat.size(2);
  auto long_opts = R_hat.options().dtype(at::kLong);
  at::Tensor points = at::empty({B, capacity, 2}, long_opts);
  at::Tensor response = at::empty({B, capacity}, R_hat.options());
  at::Tensor count = at::empty({B}, long_opts);
  if (R_hat.is_cuda()) {
#ifdef WITH_CUDA
    const auto acc_dtype = R_hat.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor lam2 = at::empty({B, H, W}, R_hat.options().dtype(acc_dtype));
    at::Tensor keys = at::empty({B, H * W}, long_opts);
    launch_critical_keys_kernel(R_hat, buildings, sigma, min_response, lam2, keys);
    // Keys are unique per valid point (the index is in the low word), so any top-k is exact.
    const int64_t k = std::min<int64_t>(capacity, H * W);
    at::Tensor top = std::get<0>(at::topk(keys, k, 1, true, true));
    if (k < capacity) top = at::cat({top, at::zeros({B, capacity - k}, long_opts)}, 1);
    launch_critical_decode_kernel(top, lam2, W, points, response, count);
#else
    TORCH_CHECK(false, "wifidiff_C was built without CUDA");
#endif
  } else {
    critical_points_cpu(R_hat, buildings, sigma, min_response, points, response, count);
  }
  return {points, response, count};
}

WD_REGISTER_OP(critical_points,
               "critical_points(Tensor R_hat, Tensor buildings, float sigma, int capacity,"
               " float min_response) -> (Tensor, Tensor, Tensor)")

}  // namespace wifidiff
