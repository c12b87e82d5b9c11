// ddim_step: operator (checks, allocation, dispatch) and CPU body (at::parallel_for).
#include "ddim_step.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>

#include "checks.h"
#include "registration.h"

namespace wifidiff {

// fp32 AVX2 body with non-temporal stores: the two outputs (2 × 16 MiB for 64 maps of 256²)
// never fit a cache, and streaming them skips the read-for-ownership of every output line, a
// third of the memory traffic. Returns where the scalar tail loop must continue.
template <bool kNoise>
int64_t ddim_fp32_stream(const float* x, const float* e, const float* z, const DdimCoef<float>& c,
                         bool clip, float r, float* xp, float* x0, int64_t begin, int64_t end) {
#if defined(__AVX2__) && defined(__FMA__)
  const auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 31) == 0; };
  if (!aligned(xp + begin) || !aligned(x0 + begin)) return begin;
  const __m256 a_t = _mm256_set1_ps(c.sqrt_ab_t), m_t = _mm256_set1_ps(c.sqrt_1m_ab_t);
  const __m256 a_p = _mm256_set1_ps(c.sqrt_ab_prev), dir = _mm256_set1_ps(c.dir_coef);
  const __m256 sig = _mm256_set1_ps(c.sigma_t), lo = _mm256_set1_ps(-r), hi = _mm256_set1_ps(r);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i), ev = _mm256_loadu_ps(e + i);
    // the same operations, in the same order, as ddim_update (division, not a reciprocal)
    __m256 x0v = _mm256_div_ps(_mm256_sub_ps(xv, _mm256_mul_ps(m_t, ev)), a_t);
    if (clip) {  // as the scalar ternaries: NaN stays NaN (the compare is false for NaN)
      x0v = _mm256_blendv_ps(x0v, lo, _mm256_cmp_ps(x0v, lo, _CMP_LT_OQ));
      x0v = _mm256_blendv_ps(x0v, hi, _mm256_cmp_ps(x0v, hi, _CMP_GT_OQ));
    }
    __m256 prev = _mm256_add_ps(_mm256_mul_ps(a_p, x0v), _mm256_mul_ps(dir, ev));
    prev = _mm256_add_ps(prev,
                         kNoise ? _mm256_mul_ps(sig, _mm256_loadu_ps(z + i)) : _mm256_setzero_ps());
    _mm256_stream_ps(xp + i, prev);
    _mm256_stream_ps(x0 + i, x0v);
  }
  _mm_sfence();  // the streamed stores are visible before the op returns
  return i;
#else
  return begin;
#endif
}

void ddim_step_cpu(const at::TensorBase& x_t, const at::TensorBase& eps,
                   const at::TensorBase& table, int64_t step_value, const at::TensorBase* noise,
                   bool clip_sample, double clip_range, const KnownRaster& known,
                   const at::TensorBase& x_prev, const at::TensorBase& x0_pred) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x_t.scalar_type(), "ddim_step_cpu", [&] {
        using acc = acc_t<scalar_t>;
        const acc* row = table.const_data_ptr<acc>() + step_value * 5;
        const DdimCoef<acc> c{row[0], row[1], row[2], row[3], row[4]};
        const scalar_t* x = x_t.const_data_ptr<scalar_t>();
        const scalar_t* e = eps.const_data_ptr<scalar_t>();
        const scalar_t* z = noise ? noise->const_data_ptr<scalar_t>() : nullptr;
        const scalar_t* kv = known.known ? known.known->const_data_ptr<scalar_t>() : nullptr;
        const uint8_t* km = known.mask ? known.mask->const_data_ptr<uint8_t>() : nullptr;
        scalar_t* xp = x_prev.mutable_data_ptr<scalar_t>();
        scalar_t* x0 = x0_pred.mutable_data_ptr<scalar_t>();
        const acc r = static_cast<acc>(clip_range);
        const int64_t plane = known.plane;
        // one loop body per (noise?) so it stays branch-free and vectorises; the known-sample write
        // is a second pass over the same chunk (its inputs still in L2) that redoes only the masked
        // pixels, which keeps the main loop free of the mask's conditional loads
        auto run = [&](auto has_noise) {
          constexpr bool kNoise = decltype(has_noise)::value;
          at::parallel_for(0, x_t.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
            int64_t i = begin;
            if constexpr (std::is_same_v<scalar_t, float>) {
              i = ddim_fp32_stream<kNoise>(x, e, z, c, clip_sample, r, xp, x0, begin, end);
            }
            for (; i < end; ++i) {
              acc a, b;
              ddim_update<acc>(acc(x[i]), acc(e[i]), kNoise ? acc(z[i]) : acc(0), c, clip_sample, r,
                               false, acc(0), a, b);
              xp[i] = scalar_t(a);
              x0[i] = scalar_t(b);
            }
            if (km == nullptr) return;
            // walk one candidate plane at a time: the known raster index is i + shift inside it
            for (int64_t i = begin; i < end;) {
              const int64_t stop = std::min(end, (i / plane + 1) * plane);
              const int64_t shift = known_index(i, plane, known.per_group) - i;
              while (i < stop) {
                if (i + 8 <= stop) {  // the mask is sparse: skip 8 unset pixels per load
                  uint64_t word;
                  std::memcpy(&word, km + i + shift, sizeof(word));
                  if (word == 0) {
                    i += 8;
                    continue;
                  }
                }
                if (km[i + shift] == 0) {
                  ++i;
                  continue;
                }
                acc a, b;
                ddim_update<acc>(acc(x[i]), acc(e[i]), kNoise ? acc(z[i]) : acc(0), c, clip_sample,
                                 r, true, acc(kv[i + shift]), a, b);
                xp[i] = scalar_t(a);
                x0[i] = scalar_t(b);
                ++i;
              }
            }
          });
        };
        if (z)
          run(std::true_type{});
        else
          run(std::false_type{});
      });
}

std::tuple<at::Tensor, at::Tensor> ddim_step(const at::Tensor& x_t, const at::Tensor& eps,
                                             const at::Tensor& table, const at::Tensor& step,
                                             const std::optional<at::Tensor>& noise,
                                             bool clip_sample, double clip_range,
                                             const std::optional<at::Tensor>& known,
                                             const std::optional<at::Tensor>& known_mask) {
  WD_CHECK_FLOAT(x_t);
  WD_CHECK_NONEMPTY(x_t);
  WD_CHECK_CONTIG(x_t);
  WD_CHECK_DTYPE(eps, x_t.scalar_type());
  WD_CHECK_SHAPE(eps, x_t);
  WD_CHECK_DEVICE(eps, x_t);
  WD_CHECK_CONTIG(eps);
  const auto acc_dtype = x_t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  WD_CHECK_DTYPE(table, acc_dtype);
  WD_CHECK_DIM(table, 2);
  TORCH_CHECK(table.size(0) >= 1 && table.size(1) == 5, "table must be [n_steps, 5], got ",
              table.sizes());
  WD_CHECK_DEVICE(table, x_t);
  WD_CHECK_CONTIG(table);
  TORCH_CHECK(step.dim() == 0, "step must be a 0-dim tensor, got ", step.sizes());
  WD_CHECK_DTYPE(step, at::kLong);
  TORCH_CHECK(step.device().is_cpu() || step.device() == x_t.device(), "step is on ", step.device(),
              "; expected cpu or ", x_t.device());
  if (noise.has_value()) {
    const at::Tensor& z = *noise;
    WD_CHECK_DTYPE(z, x_t.scalar_type());
    WD_CHECK_SHAPE(z, x_t);
    WD_CHECK_DEVICE(z, x_t);
    WD_CHECK_CONTIG(z);
  }
  TORCH_CHECK(clip_range > 0, "clip_range must be > 0, got ", clip_range);
  TORCH_CHECK(known.has_value() == known_mask.has_value(),
              "known and known_mask go together: give both or neither");
  KnownRaster kr;
  kr.plane = x_t.numel() / x_t.size(0);
  if (known.has_value()) {
    const at::Tensor& kv = *known;
    const at::Tensor& km = *known_mask;
    WD_CHECK_DTYPE(kv, x_t.scalar_type());
    WD_CHECK_DEVICE(kv, x_t);
    WD_CHECK_CONTIG(kv);
    TORCH_CHECK(kv.dim() == x_t.dim() && kv.size(0) >= 1 && x_t.size(0) % kv.size(0) == 0 &&
                    kv.sizes().slice(1) == x_t.sizes().slice(1),
                "known has shape ", kv.sizes(), "; expected [G, ", x_t.sizes().slice(1),
                "] with G dividing ", x_t.size(0));
    WD_CHECK_DTYPE(km, at::kByte);
    WD_CHECK_SHAPE(km, kv);
    WD_CHECK_DEVICE(km, x_t);
    WD_CHECK_CONTIG(km);
    kr.known = &kv;
    kr.mask = &km;
    kr.per_group = x_t.size(0) / kv.size(0);
  }
  int64_t step_value = -1;
  const int64_t* step_ptr = nullptr;
  if (step.device().is_cpu()) {
    step_value = step.item<int64_t>();
    TORCH_CHECK(step_value >= 0 && step_value < table.size(0), "step ", step_value,
                " is out of range for a table of ", table.size(0), " steps");
  } else {
    step_ptr = step.const_data_ptr<int64_t>();
  }
  at::Tensor x_prev = at::empty_like(x_t);
  at::Tensor x0_pred = at::empty_like(x_t);
  const at::TensorBase* z = noise.has_value() ? &*noise : nullptr;
  if (x_t.is_cuda()) {
#ifdef WITH_CUDA
    launch_ddim_step_kernel(x_t, eps, table, step_ptr, step_value, z, clip_sample, clip_range, kr,
                            x_prev, x0_pred);
#else
    TORCH_CHECK(false, "wifidiff_C was built without CUDA");
#endif
  } else {
    TORCH_CHECK(x_t.device().is_cpu(), "unsupported device ", x_t.device());
    ddim_step_cpu(x_t, eps, table, step_value, z, clip_sample, clip_range, kr, x_prev, x0_pred);
  }
  return {x_prev, x0_pred};
}

WD_REGISTER_OP(ddim_step,
               "ddim_step(Tensor x_t, Tensor eps, Tensor table, Tensor step, Tensor? noise,"
               " bool clip_sample, float clip_range, Tensor? known,"
               " Tensor? known_mask) -> (Tensor, Tensor)")

}  // namespace wifidiff
