// Fused DDIM update (spec: wifidiff_fast/reference/ddim.py::ddim_step_ref).
// The formula below is THE one shared by ddim_step.cpp (CPU) and ddim_step_cuda.cu; its numbered
// comments match the reference and the Triton kernel (kernels/ddim_step.py).
#pragma once

#include <ATen/core/TensorBase.h>

#include "common.h"

namespace wifidiff {

// One row of the [n_steps, 5] table (sampling/schedules.py TABLE_COLUMNS).
template <typename acc>
struct DdimCoef {
  acc sqrt_ab_t, sqrt_1m_ab_t, sqrt_ab_prev, dir_coef, sigma_t;
};

// Where candidate element i reads the known-sample raster [G, plane]: the group of candidate
// n = i / plane is n / per_group (K consecutive candidates per map, repeat_interleave layout).
WD_HD int64_t known_index(int64_t i, int64_t plane, int64_t per_group) {
  const int64_t n = i / plane;
  return (n / per_group) * plane + (i - n * plane);
}

template <typename acc>
WD_HD void ddim_update(acc x, acc e, acc z, const DdimCoef<acc>& c, bool clip, acc clip_range,
                       bool write_known, acc known, acc& x_prev, acc& x0_pred) {
  // 1. predicted x0 (eq. 12, first term)
  acc x0 = (x - c.sqrt_1m_ab_t * e) / c.sqrt_ab_t;
  // 2. optional clipping (NaN stays NaN, as torch.clamp)
  if (clip) x0 = x0 < -clip_range ? -clip_range : (x0 > clip_range ? clip_range : x0);
  // 2b. optional known-sample write of the condition raster (measurements win over clipping)
  if (write_known) x0 = known;
  // 3. direction pointing to x_t (eq. 12, second term), 4. x_{t-1}, 5. + sigma_t * z
  x_prev = c.sqrt_ab_prev * x0 + c.dir_coef * e + c.sigma_t * z;
  x0_pred = x0;
}

// The optional known-sample write: known [G, plane] in the input dtype, mask [G, plane] uint8.
struct KnownRaster {
  const at::TensorBase* known = nullptr;
  const at::TensorBase* mask = nullptr;
  int64_t plane = 1, per_group = 1;
};

// CPU body (ddim_step.cpp). step_value is a valid row of table.
void ddim_step_cpu(const at::TensorBase& x_t, const at::TensorBase& eps,
                   const at::TensorBase& table, int64_t step_value, const at::TensorBase* noise,
                   bool clip_sample, double clip_range, const KnownRaster& known,
                   const at::TensorBase& x_prev, const at::TensorBase& x0_pred);

// CUDA launcher (ddim_step_cuda.cu): the step row is read on the device from step_ptr when it is
// not null (graph capture), else step_value. An out-of-range device step writes NaN.
void launch_ddim_step_kernel(const at::TensorBase& x_t, const at::TensorBase& eps,
                             const at::TensorBase& table, const int64_t* step_ptr,
                             int64_t step_value, const at::TensorBase* noise, bool clip_sample,
                             double clip_range, const KnownRaster& known,
                             const at::TensorBase& x_prev, const at::TensorBase& x0_pred);

}  // namespace wifidiff
