// merge_condition: the operator (checks, allocation, dispatch by device) and the CPU body.
// CPU: one map per task; a streaming copy of (S, M) with the sample rule, then the boost points.
#include "merge_condition.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

#include <tuple>

#include "checks.h"
#include "registration.h"

namespace wifidiff {

void merge_condition_cpu(const at::TensorBase& R_hat, const at::TensorBase& points,
                         const at::TensorBase& S, const at::TensorBase& M,
                         const at::TensorBase& S_prime, const at::TensorBase& M_prime) {
  const int64_t B = R_hat.size(0), H = R_hat.size(1), W = R_hat.size(2), P = points.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, R_hat.scalar_type(), "merge_condition_cpu", [&] {
        const scalar_t* R = R_hat.const_data_ptr<scalar_t>();
        const scalar_t* s = S.const_data_ptr<scalar_t>();
        const scalar_t* m = M.const_data_ptr<scalar_t>();
        const int64_t* pts = points.const_data_ptr<int64_t>();
        scalar_t* sp = S_prime.mutable_data_ptr<scalar_t>();
        scalar_t* mp = M_prime.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) {
            const int64_t o = b * H * W;
            for (int64_t i = o; i < o + H * W; ++i) {
              const acc_t<scalar_t> mi = acc_t<scalar_t>(m[i]);
              sp[i] = mi > 0 ? s[i] : scalar_t(0);
              mp[i] = (mi != mi || mi > 0) ? m[i] : scalar_t(0);  // maximum(0, M), NaN kept
            }
            for (int64_t j = 0; j < P; ++j) {  // boost points; the real samples win
              const int64_t r = pts[(b * P + j) * 2], c = pts[(b * P + j) * 2 + 1];
              if (r < 0 || r >= H || c < 0 || c >= W) continue;
              const int64_t i = o + r * W + c;
              const acc_t<scalar_t> mi = acc_t<scalar_t>(m[i]);
              sp[i] = mi > 0 ? s[i] : R[i];
              mp[i] = (mi != mi || mi > 1) ? m[i] : scalar_t(1);
            }
          }
        });
      });
}

std::tuple<at::Tensor, at::Tensor> merge_condition(const at::Tensor& R_hat,
                                                   const at::Tensor& points, const at::Tensor& S,
                                                   const at::Tensor& M) {
  WD_CHECK_FLOAT(R_hat);
  WD_CHECK_DIM(R_hat, 3);
  WD_CHECK_NONEMPTY(R_hat);
  WD_CHECK_CONTIG(R_hat);
  for (const at::Tensor* t : {&S, &M}) {
    TORCH_CHECK_TYPE(t->scalar_type() == R_hat.scalar_type(), "S and M must have R_hat's dtype");
    TORCH_CHECK(t->sizes() == R_hat.sizes(), "S and M must have R_hat's shape ", R_hat.sizes());
    TORCH_CHECK(t->device() == R_hat.device(), "S and M must be on R_hat's device");
    TORCH_CHECK(t->is_contiguous(), "S and M must be contiguous");
  }
  WD_CHECK_DTYPE(points, at::kLong);
  WD_CHECK_DIM(points, 3);
  TORCH_CHECK(points.size(0) == R_hat.size(0) && points.size(2) == 2,
              "points must be [B, P, 2], got ", points.sizes());
  WD_CHECK_DEVICE(points, R_hat);
  WD_CHECK_CONTIG(points);
  at::Tensor S_prime = at::empty_like(S);
  at::Tensor M_prime = at::empty_like(M);
  if (R_hat.is_cuda()) {
#ifdef WITH_CUDA
    launch_merge_condition_kernel(R_hat, points, S, M, S_prime, M_prime);
#else
    TORCH_CHECK(false, "wifidiff_C was built without CUDA");
#endif
  } else {
    merge_condition_cpu(R_hat, points, S, M, S_prime, M_prime);
  }
  return {S_prime, M_prime};
}

WD_REGISTER_OP(
    merge_condition,
    "merge_condition(Tensor R_hat, Tensor points, Tensor S, Tensor M) -> (Tensor, Tensor)")

}  // namespace wifidiff
