// The optimizer on CUDA: Σ g² in double and one fused, clipped AdamW step over the flat
// buffers, twins of kernels/cpu/optim.cpp composed as lab/optimizer.cpp composes them (clip by
// min(1, grad_clip / ‖g‖), decay on the decay region, the same update order, bias correction
// and denominator in double). Both are grid-stride and float4 when every pointer is aligned;
// sum_squares adds one double per block atomically, so its last bits depend on block order.
// Checked by kernels/selftest/loss_optim.cpp.
#include "kernels/cuda/optim.hpp"

#include <algorithm>
#include <cub/block/block_reduce.cuh>
#include <string>

namespace statelab::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 8;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

int grid_for(const Context& ctx, int64_t items) {
  const int64_t cap = int64_t(std::max(ctx.sm_count, 1)) * kBlocksPerSm;
  return int(std::clamp<int64_t>((items + kThreads - 1) / kThreads, 1, cap));
}

__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(const float* x, int64_t n, bool vec, double* out) {
  using BlockSum = cub::BlockReduce<double, kThreads>;
  __shared__ BlockSum::TempStorage temp;
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  const int64_t first = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t n4 = vec ? n / 4 : 0;
  double acc = 0;
  for (int64_t i = first; i < n4; i += stride) {
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    acc += double(v.x) * v.x + double(v.y) * v.y + double(v.z) * v.z + double(v.w) * v.w;
  }
  for (int64_t i = 4 * n4 + first; i < n; i += stride) acc += double(x[i]) * x[i];
  const double total = BlockSum(temp).Sum(acc);
  if (threadIdx.x == 0) atomicAdd(out, total);
}

struct AdamWParams {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n, n_decay;
  AdamWHyper hyper;
  AdamWDeviceStep step;
  bool vec;
};

// The per-step scalars every thread derives from the device values, exactly as the CPU does.
struct AdamWScalars {
  float clip, decay, b1, b2, step_size;
  double c2, eps;
};

__device__ void adamw_one(const AdamWScalars& s, float& p, float g, float& m, float& v,
                          bool decays) {
  g *= s.clip;
  m = s.b1 * m + (1.f - s.b1) * g;
  v = s.b2 * v + (1.f - s.b2) * g * g;
  const float denom = float(sqrt(double(v) * s.c2) + s.eps);
  p = p * (decays ? s.decay : 1.f) - s.step_size * m / denom;
}

__global__ void __launch_bounds__(kThreads) adamw_update_kernel(AdamWParams a) {
  const double norm = sqrt(*a.step.grad_norm_sq);
  if (!isfinite(norm)) return;  // the step is skipped: nothing is written
  const double lr = double(*a.step.lr);
  const double t = double(*a.step.steps_taken + 1);
  const double c1 = 1.0 / (1.0 - pow(a.hyper.beta1, t));
  AdamWScalars s;
  s.clip =
      a.hyper.grad_clip > 0 && norm > a.hyper.grad_clip ? float(a.hyper.grad_clip / norm) : 1.f;
  s.decay = float(1.0 - lr * a.hyper.weight_decay);
  s.b1 = float(a.hyper.beta1);
  s.b2 = float(a.hyper.beta2);
  s.step_size = float(lr * c1);
  s.c2 = 1.0 / (1.0 - pow(a.hyper.beta2, t));
  s.eps = a.hyper.eps;

  const int64_t stride = int64_t(gridDim.x) * kThreads;
  const int64_t first = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t n4 = a.vec ? a.n / 4 : 0;
  for (int64_t i = first; i < n4; i += stride) {
    float4 p = reinterpret_cast<float4*>(a.p)[i];
    const float4 g = reinterpret_cast<const float4*>(a.g)[i];
    float4 m = reinterpret_cast<float4*>(a.m)[i];
    float4 v = reinterpret_cast<float4*>(a.v)[i];
    const int64_t e = 4 * i;
    adamw_one(s, p.x, g.x, m.x, v.x, e < a.n_decay);
    adamw_one(s, p.y, g.y, m.y, v.y, e + 1 < a.n_decay);
    adamw_one(s, p.z, g.z, m.z, v.z, e + 2 < a.n_decay);
    adamw_one(s, p.w, g.w, m.w, v.w, e + 3 < a.n_decay);
    reinterpret_cast<float4*>(a.p)[i] = p;
    reinterpret_cast<float4*>(a.m)[i] = m;
    reinterpret_cast<float4*>(a.v)[i] = v;
  }
  for (int64_t i = 4 * n4 + first; i < a.n; i += stride)
    adamw_one(s, a.p[i], a.g[i], a.m[i], a.v[i], i < a.n_decay);
}

}  // namespace

void sum_squares(const Context& ctx, const float* x, int64_t n, double* out) {
  SL_CHECK_SHAPE(n >= 0, "sum_squares: n = " + std::to_string(n) + " < 0");
  if (n == 0) return;
  const bool vec = aligned16(x);
  sum_squares_kernel<<<grid_for(ctx, vec ? (n + 3) / 4 : n), kThreads, 0, ctx.stream>>>(x, n, vec,
                                                                                        out);
  SL_CUDA_LAUNCH_CHECK();
}

void adamw_update(const Context& ctx, float* p, const float* g, float* m, float* v, int64_t n,
                  int64_t n_decay, const AdamWHyper& hyper, const AdamWDeviceStep& step) {
  SL_CHECK_SHAPE(n >= 0 && n_decay >= 0 && n_decay <= n,
                 "adamw_update: n = " + std::to_string(n) +
                     ", n_decay = " + std::to_string(n_decay) + " (need 0 <= n_decay <= n)");
  SL_CHECK(step.lr && step.grad_norm_sq && step.steps_taken,
           "adamw_update: the step's lr, grad_norm_sq and steps_taken must be device pointers");
  if (n == 0) return;
  const bool vec = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v);
  adamw_update_kernel<<<grid_for(ctx, vec ? (n + 3) / 4 : n), kThreads, 0, ctx.stream>>>(
      AdamWParams{p, g, m, v, n, n_decay, hyper, step, vec});
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
