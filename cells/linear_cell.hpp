// Shared by the blocks around the unified linear recurrence (mLSTM, Mamba-2, Gated DeltaNet):
// arena sizing for the chunk-boundary states and the scalar gate functions they use.
#pragma once

#include <cmath>
#include <cstdint>

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
inline double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// Inverse of softplus for x > 0: the dt_bias that makes softplus(dt_bias) = dt (Mamba's init).
inline double inverse_softplus(double x) { return x + std::log(-std::expm1(-x)); }

}  // namespace statelab
