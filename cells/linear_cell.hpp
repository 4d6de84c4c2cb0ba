// Shared by the blocks around the unified linear recurrence (mLSTM, Mamba-2, Gated DeltaNet):
// arena sizing for the chunk-boundary states and the published initialisation of the decay
// parameters (the decay itself is kernels/cpu/decay).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cells/params.hpp"

namespace statelab {

// Arena elements per token that hold the recurrence's chunk-boundary states: a sequence of T
// steps keeps ceil(T / chunk) − 1 <= T / chunk states of H·(Dv·Dk [+ Dk]) elements.
inline int64_t boundary_per_token(int64_t H, int64_t Dk, int64_t Dv, bool normalized,
                                  int64_t chunk) {
  const int64_t state = H * (Dv * Dk + (normalized ? Dk : 0));
  return (state + chunk - 1) / chunk;
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

}  // namespace statelab
