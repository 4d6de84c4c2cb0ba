// The scalar gate scans that feed the CUDA linear recurrence: mLSTM's stabilizer (twin of
// kernels/cpu/stabilizer.cpp) and the selective decay of Mamba-2 and Gated DeltaNet (twin of
// kernels/cpu/decay.cpp), declared in linear_recurrence.hpp. Both compute in double inside a
// thread, as the CPU does. Checked by kernels/selftest/linear_recurrence.cpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "kernels/cuda/linear_recurrence.hpp"
#include "kernels/error.hpp"

namespace statelab::cuda {

namespace {

// ---- gate scans ------------------------------------------------------------------------------
// One warp per (b, h) sequence, lanes over 32 consecutive steps: the transcendental parts run in
// parallel and only the max-scan of m (one add and one max per step) walks the tile in order,
// in double and in the CPU's order of operations, so results match the CPU to its rounding.
constexpr int kScanWarps = 4;
constexpr double kLn2 = 0.693147180559945309417232121458176568;

__device__ double log_sigmoid_d(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
__device__ double sigmoid_d(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
__device__ double softplus_d(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

__device__ void log_forget_d(cpu::ForgetGate kind, double x, double& log_abs, double& sign) {
  switch (kind) {
    case cpu::ForgetGate::sigmoid:
      log_abs = log_sigmoid_d(x), sign = 1;
      return;
    case cpu::ForgetGate::exp:
      log_abs = x, sign = 1;
      return;
    case cpu::ForgetGate::signed_sigmoid: {
      const double f = tanh(x / 2);
      log_abs = log(fabs(f)), sign = f < 0 ? -1 : 1;
      return;
    }
  }
}

__device__ double dlog_forget_d(cpu::ForgetGate kind, double x) {
  switch (kind) {
    case cpu::ForgetGate::sigmoid:
      return 1 - sigmoid_d(x);
    case cpu::ForgetGate::exp:
      return 1;
    case cpu::ForgetGate::signed_sigmoid:
      return 1 / sinh(x);
  }
  return 0;
}

struct GateScanFwdArgs {
  cpu::ForgetGate kind;
  int64_t B, T, H;
  const float *igate, *fgate;  // [B, T, H]
  float *m, *a, *c, *floor;    // [B, T, H]
};

struct GateScanBwdArgs {
  cpu::ForgetGate kind;
  int64_t B, T, H;
  const float *igate, *fgate, *m, *a, *c, *floor;  // [B, T, H]
  const float *da, *dc, *dfloor;                   // [B, T, H]; dfloor may be null
  float *dig, *dfg;                                // [B, T, H]
};

__global__ void __launch_bounds__(kScanWarps * 32)
    stabilized_gates_fwd_kernel(const GateScanFwdArgs p) {
  __shared__ double s_log_f[kScanWarps][32], s_ig[kScanWarps][32];
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  const int64_t seq = int64_t(blockIdx.x) * kScanWarps + warp;
  if (seq >= p.B * p.H) return;  // whole warps only; no block barrier follows
  const int64_t b = seq / p.H, h = seq % p.H;
  double m_prev = -INFINITY;
  for (int64_t t0 = 0; t0 < p.T; t0 += 32) {
    const int64_t t = t0 + lane, i = (b * p.T + t) * p.H + h;
    const bool valid = t < p.T;
    double log_f = 0, sign = 1, ig = 0;
    if (valid) {
      log_forget_d(p.kind, double(p.fgate[i]), log_f, sign);
      ig = double(p.igate[i]);
    }
    s_log_f[warp][lane] = log_f;
    s_ig[warp][lane] = ig;
    __syncwarp();
    const int n = int(std::min<int64_t>(32, p.T - t0));
    double my_decayed = 0, my_m = 0;
    for (int s = 0; s < n; ++s) {
      const double decayed = s_log_f[warp][s] + m_prev;  // −∞ on the first step
      const double ig_s = s_ig[warp][s];
      const double m_t = decayed < ig_s ? ig_s : decayed;  // std::max's choice on ties
      if (s == lane) my_decayed = decayed, my_m = m_t;
      m_prev = m_t;
    }
    __syncwarp();  // the next tile overwrites the staged values
    if (valid) {
      p.m[i] = float(my_m);
      p.a[i] = float(sign * exp(my_decayed - my_m));
      p.c[i] = float(exp(ig - my_m));
      p.floor[i] = float(fmin(exp(-my_m), double(FLT_MAX)));  // as the CPU twin caps it
    }
  }
}

// Reverse: ∂L/∂m_t = base_t + ∂L/∂decayed_{t+1} is the only dependence between steps, so the
// tile's bases are computed in parallel and the carry walks them backward.
__global__ void __launch_bounds__(kScanWarps * 32)
    stabilized_gates_bwd_kernel(const GateScanBwdArgs p) {
  __shared__ double s_base[kScanWarps][32], s_ga[kScanWarps][32];
  __shared__ bool s_input[kScanWarps][32];
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  const int64_t seq = int64_t(blockIdx.x) * kScanWarps + warp;
  if (seq >= p.B * p.H) return;
  const int64_t b = seq / p.H, h = seq % p.H;
  double g_decayed_next = 0;  // ∂L/∂decayed_{t+1}
  for (int64_t t0 = (p.T - 1) / 32 * 32; t0 >= 0; t0 -= 32) {
    const int64_t t = t0 + lane, i = (b * p.T + t) * p.H + h;
    const bool valid = t < p.T;
    double ga = 0, gc = 0, base = 0;
    bool input_branch = true;
    if (valid) {
      ga = double(p.da[i]) * double(p.a[i]);
      gc = double(p.dc[i]) * double(p.c[i]);
      base = -ga - gc - (p.dfloor ? double(p.dfloor[i]) * double(p.floor[i]) : 0.0);
      input_branch = t == 0 || p.m[i] == p.igate[i];
    }
    s_base[warp][lane] = base;
    s_ga[warp][lane] = ga;
    s_input[warp][lane] = input_branch;
    __syncwarp();
    const int n = int(std::min<int64_t>(32, p.T - t0));
    double g_m = 0;
    for (int s = n - 1; s >= 0; --s) {
      const double gm_s = s_base[warp][s] + g_decayed_next;
      if (s == lane) g_m = gm_s;
      g_decayed_next = s_input[warp][s] ? s_ga[warp][s] : s_ga[warp][s] + gm_s;
    }
    __syncwarp();  // the next tile overwrites the staged values
    if (valid) {
      const double x = double(p.fgate[i]);
      double da_dx = 0;  // ∂a/∂f̃ with m fixed
      switch (p.kind) {
        case cpu::ForgetGate::sigmoid:
          da_dx = double(p.a[i]) * (1 - sigmoid_d(x));
          break;
        case cpu::ForgetGate::exp:
          da_dx = double(p.a[i]);
          break;
        case cpu::ForgetGate::signed_sigmoid:
          if (t > 0)
            da_dx = exp(kLn2 + log_sigmoid_d(x) + log_sigmoid_d(-x) + double(p.m[i - p.H]) -
                        double(p.m[i]));
          break;
      }
      double g_f = double(p.da[i]) * da_dx;
      if (input_branch) {
        p.dig[i] = float(gc + g_m);
      } else {
        p.dig[i] = float(gc);
        g_f += g_m * dlog_forget_d(p.kind, x);
      }
      p.dfg[i] = float(g_f);
    }
  }
}

constexpr int kDecayThreads = 256;
constexpr int kDecayMaxBlocks = 128;  // per head in backward: bounds the atomic adds

struct DecayFwdArgs {
  int64_t N, H;
  const float *raw, *A_log, *dt_bias;  // raw [N, H]; A_log, dt_bias [H]
  float *dt, *decay;                   // [N, H]
};

struct DecayBwdArgs {
  int64_t N, H;
  const float *raw, *A_log, *dt_bias;  // raw [N, H]; A_log, dt_bias [H]
  const float *dt, *decay, *d_decay;   // [N, H]
  const float* d_dt;                   // [N, H] or null
  float* d_raw;                        // [N, H], overwritten
  float *dA_log, *ddt_bias;            // [H], accumulated
};

__global__ void __launch_bounds__(kDecayThreads) selective_decay_fwd_kernel(const DecayFwdArgs p) {
  const int64_t n = p.N * p.H;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t h = i % p.H;
    const double step = softplus_d(double(p.raw[i]) + double(p.dt_bias[h]));
    p.dt[i] = float(step);
    p.decay[i] = float(exp(-exp(double(p.A_log[h])) * step));
  }
}

// Head blockIdx.y; the block's share of dA_log and ddt_bias is summed in double and added once.
__global__ void __launch_bounds__(kDecayThreads) selective_decay_bwd_kernel(const DecayBwdArgs p) {
  __shared__ double s_sum[2][kDecayThreads / 32];
  const int64_t h = blockIdx.y;
  const double A = exp(double(p.A_log[h])), bias = double(p.dt_bias[h]);
  double dA = 0, dbias = 0;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < p.N;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t * p.H + h;
    const double g = double(p.d_decay[i]) * double(p.decay[i]);  // ∂L/∂(−A·dt)
    dA += -g * A * double(p.dt[i]);
    const double g_dt = -g * A + (p.d_dt ? double(p.d_dt[i]) : 0.0);
    const double d_raw = g_dt * sigmoid_d(double(p.raw[i]) + bias);
    p.d_raw[i] = float(d_raw);
    dbias += d_raw;
  }
  for (int o = 16; o > 0; o >>= 1) {
    dA += __shfl_xor_sync(0xffffffffu, dA, o);
    dbias += __shfl_xor_sync(0xffffffffu, dbias, o);
  }
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  if (lane == 0) s_sum[0][warp] = dA, s_sum[1][warp] = dbias;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sa = 0, sb = 0;
    for (int w = 0; w < kDecayThreads / 32; ++w) sa += s_sum[0][w], sb += s_sum[1][w];
    atomicAdd(p.dA_log + h, float(sa));
    atomicAdd(p.ddt_bias + h, float(sb));
  }
}

}  // namespace

void stabilized_gates_fwd(const Context& ctx, cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H,
                          const float* igate, const float* fgate, float* m, float* a, float* c,
                          float* floor) {
  SL_CHECK_SHAPE(B >= 0 && T >= 0 && H >= 0, "stabilized gates: negative shape");
  if (B * T * H == 0) return;
  SL_CHECK_SHAPE(igate && fgate && m && a && c && floor, "stabilized gates: null tensor");
  const GateScanFwdArgs p{kind, B, T, H, igate, fgate, m, a, c, floor};
  const int64_t blocks = (B * H + kScanWarps - 1) / kScanWarps;
  stabilized_gates_fwd_kernel<<<unsigned(blocks), kScanWarps * 32, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void stabilized_gates_bwd(const Context& ctx, cpu::ForgetGate kind, int64_t B, int64_t T, int64_t H,
                          const float* igate, const float* fgate, const float* m, const float* a,
                          const float* c, const float* floor, const float* da, const float* dc,
                          const float* dfloor, float* dig, float* dfg) {
  SL_CHECK_SHAPE(B >= 0 && T >= 0 && H >= 0, "stabilized gates backward: negative shape");
  if (B * T * H == 0) return;
  SL_CHECK_SHAPE(igate && fgate && m && a && c && floor && da && dc && dig && dfg,
                 "stabilized gates backward: null tensor (only dfloor is optional)");
  const GateScanBwdArgs p{kind, B, T, H, igate, fgate, m, a, c, floor, da, dc, dfloor, dig, dfg};
  const int64_t blocks = (B * H + kScanWarps - 1) / kScanWarps;
  stabilized_gates_bwd_kernel<<<unsigned(blocks), kScanWarps * 32, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void selective_decay_fwd(const Context& ctx, int64_t N, int64_t H, const float* raw,
                         const float* A_log, const float* dt_bias, float* dt, float* decay) {
  SL_CHECK_SHAPE(N >= 0 && H >= 0, "selective decay: negative shape");
  if (N * H == 0) return;
  SL_CHECK_SHAPE(raw && A_log && dt_bias && dt && decay, "selective decay: null tensor");
  const DecayFwdArgs p{N, H, raw, A_log, dt_bias, dt, decay};
  const int64_t blocks = std::max<int64_t>(
      1,
      std::min<int64_t>((N * H + kDecayThreads - 1) / kDecayThreads, int64_t(ctx.sm_count) * 16));
  selective_decay_fwd_kernel<<<unsigned(blocks), kDecayThreads, 0, ctx.stream>>>(p);
  SL_CUDA_LAUNCH_CHECK();
}

void selective_decay_bwd(const Context& ctx, int64_t N, int64_t H, const float* raw,
                         const float* A_log, const float* dt_bias, const float* dt,
                         const float* decay, const float* d_decay, const float* d_dt, float* d_raw,
                         float* dA_log, float* ddt_bias) {
  SL_CHECK_SHAPE(N >= 0 && H >= 0 && H <= 65535,
                 "selective decay backward: H must be in [0, 65535]");
  if (N * H == 0) return;
  SL_CHECK_SHAPE(raw && A_log && dt_bias && dt && decay && d_decay && d_raw && dA_log && ddt_bias,
                 "selective decay backward: null tensor (only d_dt is optional)");
  const DecayBwdArgs p{N,     H,       raw,  A_log, dt_bias, dt,
                       decay, d_decay, d_dt, d_raw, dA_log,  ddt_bias};
  const int64_t blocks =
      std::min<int64_t>((N + kDecayThreads - 1) / kDecayThreads, kDecayMaxBlocks);
  selective_decay_bwd_kernel<<<dim3(unsigned(blocks), unsigned(H)), kDecayThreads, 0, ctx.stream>>>(
      p);
  SL_CUDA_LAUNCH_CHECK();
}

}  // namespace statelab::cuda
