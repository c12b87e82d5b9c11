// The one registration file: schemas of the wifidiff_C library and their CPU/CUDA kernels.
// Each operator function (in <op>.cpp) checks its inputs, allocates, and calls the CPU body or the
// CUDA launcher by device, so the same function is registered for both dispatch keys.
#include <torch/library.h>

#include <optional>
#include <tuple>

namespace wifidiff {
std::tuple<at::Tensor, at::Tensor> ddim_step(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const std::optional<at::Tensor>&,
                                             bool, double, const std::optional<at::Tensor>&,
                                             const std::optional<at::Tensor>&);
std::tuple<at::Tensor, at::Tensor, at::Tensor> critical_points(const at::Tensor&, const at::Tensor&,
                                                               double, int64_t, double);
std::tuple<at::Tensor, at::Tensor> merge_condition(const at::Tensor&, const at::Tensor&,
                                                   const at::Tensor&, const at::Tensor&);
std::tuple<at::Tensor, at::Tensor, at::Tensor> elect(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double,
    double, double, double, double);
}  // namespace wifidiff

TORCH_LIBRARY(wifidiff_C, m) {
  m.def("ddim_step(Tensor x_t, Tensor eps, Tensor table, Tensor step, Tensor? noise, "
        "bool clip_sample, float clip_range, Tensor? known, Tensor? known_mask) -> (Tensor, Tensor)");
  m.def("critical_points(Tensor R_hat, Tensor buildings, float sigma, int capacity, "
        "float min_response) -> (Tensor, Tensor, Tensor)");
  m.def("merge_condition(Tensor R_hat, Tensor points, Tensor S, Tensor M) -> (Tensor, Tensor)");
  m.def("elect(Tensor candidates, Tensor R_hat, Tensor S, Tensor M, Tensor buildings, "
        "Tensor alpha, Tensor ring_off, Tensor ring_drop, Tensor ray_off, int n_tx, float tx_drop, "
        "float tau, float lam, float gamma, float spread_scale) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(wifidiff_C, CPU, m) {
  m.impl("ddim_step", &wifidiff::ddim_step);
  m.impl("critical_points", &wifidiff::critical_points);
  m.impl("merge_condition", &wifidiff::merge_condition);
  m.impl("elect", &wifidiff::elect);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(wifidiff_C, CUDA, m) {
  m.impl("ddim_step", &wifidiff::ddim_step);
  m.impl("critical_points", &wifidiff::critical_points);
  m.impl("merge_condition", &wifidiff::merge_condition);
  m.impl("elect", &wifidiff::elect);
}
#endif
