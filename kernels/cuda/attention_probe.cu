// The attention probe on CUDA (twin of cpu::causal_attention_probe): each query's attention
// entropy and, when asked, its row of the attention map, from q, k and the log-sum-exp the fused
// forward saved. One warp per (b, h, query); the keys are strided over its lanes. Checked against
// the CPU twin by kernels/selftest/attention.cpp.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "kernels/cuda/attention.hpp"
#include "kernels/error.hpp"

namespace statelab::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

// p_s = exp(q_t·k_s/√Dh − lse_t) for s ≤ t (0 beyond); log p is taken as score − lse, as the CPU
// does, and terms whose p underflows to 0 count as 0.
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    attention_probe_kernel(const cpu::CausalAttention<float> a, float scale, float* entropy,
                           float* map) {
  const int64_t query = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = int(threadIdx.x) & 31;
  const int64_t T = a.T, H = a.H, Dh = a.Dh;
  if (query >= a.B * H * T) return;  // whole warps: blockDim is a multiple of 32
  const int64_t t = query % T, h = (query / T) % H, b = query / (T * H);
  const int64_t row = (b * T + t) * H + h;
  const float* q = a.q + row * Dh;
  const float lse = a.lse[row];
  float* out = map ? map + ((b * H + h) * T + t) * T : nullptr;
  float sum = 0.f;
  for (int64_t s = lane; s < T; s += 32) {
    float p = 0.f;
    if (s <= t) {
      const float* k = a.k + ((b * T + s) * H + h) * Dh;
      float score = 0.f;
      for (int64_t d = 0; d < Dh; ++d) score = fmaf(q[d], k[d], score);
      const float log_p = score * scale - lse;
      p = expf(log_p);
      if (p > 0.f) sum -= p * log_p;
    }
    if (out) out[s] = p;
  }
  for (int o = 16; o >= 1; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) entropy[row] = sum;
}

}  // namespace

void causal_attention_probe(const Context& ctx, const cpu::CausalAttention<float>& a,
                            float* entropy, float* map) {
  SL_CHECK_SHAPE(a.B >= 1 && a.T >= 1 && a.H >= 1 && a.Dh >= 1,
                 "attention probe: empty shape B=" + std::to_string(a.B) +
                     " T=" + std::to_string(a.T) + " H=" + std::to_string(a.H) +
                     " Dh=" + std::to_string(a.Dh));
  SL_CHECK_SHAPE(a.q && a.k && a.lse && entropy, "attention probe: missing tensor");
  const int64_t warps = a.B * a.H * a.T;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const float scale = float(1.0 / std::sqrt(double(a.Dh)));
  attention_probe_kernel<<<unsigned(blocks), kWarpsPerBlock * 32, 0, ctx.stream>>>(a, scale,
                                                                                   entropy, map);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
