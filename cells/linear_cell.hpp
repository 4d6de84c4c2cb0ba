// Shared by the blocks around the unified linear recurrence (mLSTM, Mamba-2, Gated DeltaNet):
// arena sizing for the chunk-boundary states, backward's scratch, the scalar gate functions
// and the published initialisation of the decay parameters.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cells/params.hpp"
#include "kernels/cpu/linear_recurrence.hpp"

namespace statelab {

// Arena elements per token that hold the recurrence's chunk-boundary states: a sequence of T
// steps keeps ceil(T / chunk) − 1 <= T / chunk states of H·(Dv·Dk [+ Dk]) elements.
inline int64_t boundary_per_token(int64_t H, int64_t Dk, int64_t Dv, bool normalized,
                                  int64_t chunk) {
  const int64_t state = H * (Dv * Dk + (normalized ? Dk : 0));
  return (state + chunk - 1) / chunk;
}

inline double sigmoid(double x) {
  return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}
// log(1 + e^x) without overflow; its derivative is sigmoid(x).
inline double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// Inverse of softplus for x > 0: the dt_bias that makes softplus(dt_bias) = dt (Mamba's init).
inline double inverse_softplus(double x) { return x + std::log(-std::expm1(-x)); }

// Mamba's and fla's A_log: A ~ U(lo, hi) stored as log A (kept off 0, whose log is −∞).
inline InitFn a_log_init(double lo, double hi) {
  return
      [lo, hi](Rng& r, int64_t) { return std::log(std::max(lo + (hi - lo) * r.uniform(), 1e-4)); };
}

// Their dt_bias: dt ~ exp(U(log 1e-3, log 1e-1)) clamped at 1e-4, stored through the inverse
// softplus so that softplus(dt_bias) starts at dt.
inline InitFn dt_bias_init() {
  return [](Rng& r, int64_t) {
    const double lo = std::log(1e-3), hi = std::log(1e-1);
    return inverse_softplus(std::max(std::exp(lo + (hi - lo) * r.uniform()), 1e-4));
  };
}

// The selective decay of Mamba-2 and Gated DeltaNet, per token and head:
//   dt = softplus(raw + dt_bias),  decay = exp(−exp(A_log)·dt).
// raw, dt, decay: [N, H]; A_log, dt_bias: [H].
template <typename S>
void selective_decay_fwd(int64_t N, int64_t H, const S* raw, const S* A_log, const S* dt_bias,
                         S* dt, S* decay) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t i = n * H + h;
      const double step = softplus(double(raw[i]) + dt_bias[h]);
      dt[i] = S(step);
      decay[i] = S(std::exp(-std::exp(double(A_log[h])) * step));
    }
}

// d_decay: the loss gradient w.r.t. decay; d_dt: any further gradient w.r.t. dt (Mamba-2 also
// uses dt as its input scale), or null. Overwrites d_raw; adds into dA_log and ddt_bias.
template <typename S>
void selective_decay_bwd(int64_t N, int64_t H, const S* raw, const S* A_log, const S* dt_bias,
                         const S* dt, const S* decay, const S* d_decay, const S* d_dt, S* d_raw,
                         S* dA_log, S* ddt_bias) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t i = n * H + h;
      const double A = std::exp(double(A_log[h]));
      const double g = double(d_decay[i]) * double(decay[i]);  // ∂L/∂(−A·dt)
      dA_log[h] += S(-g * A * double(dt[i]));
      const double g_dt = -g * A + (d_dt ? double(d_dt[i]) : 0.0);
      d_raw[i] = S(g_dt * sigmoid(double(raw[i]) + dt_bias[h]));
      ddt_bias[h] += d_raw[i];
    }
}

// Backward's scratch for this pass, grown on first use of a larger shape (the CPU path only;
// the step loop of a fixed shape never allocates).
template <typename S>
S* recurrence_work(std::vector<S>& work, const cpu::LinearRecurrence<S>& r) {
  const int64_t need = cpu::linear_recurrence_work_size(r);
  if (int64_t(work.size()) < need) work.resize(size_t(need));
  return work.data();
}

}  // namespace statelab
