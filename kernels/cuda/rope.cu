// Rotary position embedding on CUDA, twin of rope_fwd / rope_bwd in kernels/cpu/attention.cpp:
// the rotation of each (even, odd) pair of a head by its position's angle, and its transpose for
// the gradient. Checked by kernels/selftest/attention.cpp.
#include <cuda_runtime.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cuda/attention.hpp"

namespace statelab::cuda {

namespace {

// One thread per (t, pair i): the angle once, applied to every (b, h) row of its grid-y slice.
// The angle t · base^(−2i/Dh) reaches 16384 rad, where a float carries only 3 decimals, so it is
// formed in double, reduced to [−π, π] in half-turns and only then rounded for sincospif, which
// (unlike sincosf) has no slow large-argument path.
constexpr int kRopeThreads = 256;
struct RopeParams {
  float* y = nullptr;        // [B, T, H, Dh], may equal x
  const float* x = nullptr;  // [B, T, H, Dh]
  int64_t B = 0, T = 0, H = 0, half = 0;
  int Dh = 0;
  double log2_step = 0;  // log2 of the frequency ratio between neighbouring pairs, −2·log2(base)/Dh
  float direction = 1;  // +1 rotates (forward), −1 applies the transpose (backward)
};

__global__ void __launch_bounds__(kRopeThreads) rope_kernel(const RopeParams p) {
  const int64_t pair = int64_t(blockIdx.x) * kRopeThreads + threadIdx.x;
  if (pair >= p.T * p.half) return;
  const int64_t t = pair / p.half, i = pair % p.half;
  constexpr double kInvPi = 0.31830988618379067154;
  const double half_turns = double(t) * exp2(double(i) * p.log2_step) * kInvPi;
  const double reduced = half_turns - 2.0 * rint(0.5 * half_turns);
  float sn, cs;
  sincospif(float(reduced), &sn, &cs);
  sn *= p.direction;
  for (int64_t b = blockIdx.y; b < p.B; b += gridDim.y)
    for (int64_t h = 0; h < p.H; ++h) {
      const int64_t off = ((b * p.T + t) * p.H + h) * p.Dh + 2 * i;
      const float x0 = p.x[off], x1 = p.x[off + 1];
      p.y[off] = fmaf(x0, cs, -x1 * sn);
      p.y[off + 1] = fmaf(x0, sn, x1 * cs);
    }
}

void rope_rotate(const Context& ctx, float* y, const float* x, int64_t B, int64_t T, int64_t H,
                 int64_t Dh, double base, float direction) {
  SL_CHECK_SHAPE(B >= 1 && T >= 1 && H >= 1 && Dh >= 1, "RoPE: empty shape");
  SL_CHECK_SHAPE(Dh % 2 == 0, "RoPE needs an even head dimension, got Dh = " + std::to_string(Dh));
  SL_CHECK(base > 0, "RoPE base must be positive");
  SL_CHECK(x && y, "RoPE: missing tensor");
  SL_CHECK_SHAPE(Dh <= INT_MAX, "RoPE: head dimension too large");
  RopeParams p;
  p.y = y;
  p.x = x;
  p.B = B, p.T = T, p.H = H, p.half = Dh / 2;
  p.Dh = int(Dh);
  p.log2_step = -2.0 * std::log2(base) / double(Dh);
  p.direction = direction;
  const int64_t blocks = (T * p.half + kRopeThreads - 1) / kRopeThreads;
  SL_CHECK_SHAPE(blocks <= INT_MAX, "RoPE: T · Dh too large for one grid");
  const dim3 grid(unsigned(blocks), unsigned(B < 65535 ? B : 65535));
  rope_kernel<<<grid, kRopeThreads, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace

void rope_fwd(const Context& ctx, float* y, const float* x, int64_t B, int64_t T, int64_t H,
              int64_t Dh, double base) {
  rope_rotate(ctx, y, x, B, T, H, Dh, base, 1.f);
}

void rope_bwd(const Context& ctx, float* dx, const float* dy, int64_t B, int64_t T, int64_t H,
              int64_t Dh, double base) {
  rope_rotate(ctx, dx, dy, B, T, H, Dh, base, -1.f);
}

}  // namespace statelab::cuda
