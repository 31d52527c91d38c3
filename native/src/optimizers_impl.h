// Optimizer updates: SGD (momentum, Nesterov, L2) and Adam, split in chunks like the element-wise
// kernels (elementwise_impl.h), so the results do not depend on the thread count. Part of
// kernels_impl.h (included from it only, once per kernel translation unit, after the ISA
// description): internal linkage, no standard-library templates.
#ifndef DENSETRAIN_OPTIMIZERS_IMPL_H_
#define DENSETRAIN_OPTIMIZERS_IMPL_H_

namespace densetrain {
namespace {

// Arithmetic follows the reference backend (src/kernels/reference.ts): in double where it computes
// in JS numbers, rounded to float where it stores.

struct SgdCtx {
  int64_t n, chunk;
  float* param;
  const float* grad;
  float* velocity;
  double lr, momentum, l2;
  bool nesterov;
};

void SgdTask(void* vctx, int task, int /*worker*/) {
  const SgdCtx& x = *static_cast<const SgdCtx*>(vctx);
  const int64_t i0 = task * x.chunk;
  const int64_t i1 = Min64(i0 + x.chunk, x.n);
  float* DT_RESTRICT p = x.param;
  const float* DT_RESTRICT g = x.grad;
  float* DT_RESTRICT v = x.velocity;
  const double lr = x.lr, mu = x.momentum, l2 = x.l2;
  if (mu != 0.0 && v != nullptr) {
    if (x.nesterov) {
      for (int64_t i = i0; i < i1; ++i) {
        const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
        const float vi = static_cast<float>(mu * static_cast<double>(v[i]) + gi);
        v[i] = vi;
        p[i] = static_cast<float>(static_cast<double>(p[i]) - lr * (gi + mu * static_cast<double>(vi)));
      }
    } else {
      for (int64_t i = i0; i < i1; ++i) {
        const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
        const float vi = static_cast<float>(mu * static_cast<double>(v[i]) + gi);
        v[i] = vi;
        p[i] = static_cast<float>(static_cast<double>(p[i]) - lr * static_cast<double>(vi));
      }
    }
  } else {
    for (int64_t i = i0; i < i1; ++i) {
      const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
      p[i] = static_cast<float>(static_cast<double>(p[i]) - lr * gi);
    }
  }
}

void Sgd(int64_t n, float* param, const float* grad, float* velocity, double lr, double momentum,
         bool nesterov, double l2, const Exec& exec) {
  if (n <= 0) return;
  SgdCtx x{n, ChunkFor(n), param, grad, velocity, lr, momentum, l2, nesterov};
  ForTasks(exec, static_cast<int>(CeilDiv(n, x.chunk)), &SgdTask, &x);
}

struct AdamCtx {
  int64_t n, chunk;
  float* param;
  const float* grad;
  float* m;
  float* v;
  double b1, b2, eps, l2, step_size, sqrt_bias2;
};

void AdamTask(void* vctx, int task, int /*worker*/) {
  const AdamCtx& x = *static_cast<const AdamCtx*>(vctx);
  const int64_t i0 = task * x.chunk;
  const int64_t i1 = Min64(i0 + x.chunk, x.n);
  float* DT_RESTRICT p = x.param;
  const float* DT_RESTRICT g = x.grad;
  float* DT_RESTRICT m = x.m;
  float* DT_RESTRICT v = x.v;
  const double b1 = x.b1, b2 = x.b2, c1 = 1.0 - x.b1, c2 = 1.0 - x.b2, l2 = x.l2;
  // The moments are computed like the reference (in double, rounded once when stored). The
  // step itself is computed in float: sqrt and division in double would make this kernel
  // compute-bound, and the step is far smaller than the parameter it is subtracted from.
  const float step_size = static_cast<float>(x.step_size);
  const float sqrt_bias2 = static_cast<float>(x.sqrt_bias2);
  float eps = static_cast<float>(x.eps);
  // An eps too small for float must not become 0 (0/0 where m = v = 0).
  if (eps == 0.0f && x.eps > 0.0) eps = 1.40129846e-45f;
  for (int64_t i = i0; i < i1; ++i) {
    const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
    const float mi = static_cast<float>(b1 * static_cast<double>(m[i]) + c1 * gi);
    const float vi = static_cast<float>(b2 * static_cast<double>(v[i]) + c2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / sqrt_bias2 + eps;
    p[i] = p[i] - (step_size * mi) / denom;
  }
}

void Adam(int64_t n, float* param, const float* grad, float* m, float* v, double lr, double beta1,
          double beta2, double eps, double l2, double step, const Exec& exec) {
  if (n <= 0) return;
  AdamCtx x{n, ChunkFor(n), param, grad, m, v, beta1, beta2, eps, l2, 0.0, 0.0};
  x.step_size = lr / (1.0 - ::pow(beta1, step));
  x.sqrt_bias2 = ::sqrt(1.0 - ::pow(beta2, step));
  ForTasks(exec, static_cast<int>(CeilDiv(n, x.chunk)), &AdamTask, &x);
}

}  // namespace
}  // namespace densetrain

#endif  // DENSETRAIN_OPTIMIZERS_IMPL_H_
