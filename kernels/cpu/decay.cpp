// Selective decay on the CPU, in double inside each element.
#include "kernels/cpu/decay.hpp"

#include <cmath>

namespace statelab::cpu {

namespace {
double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
// log(1 + e^x) without overflow; its derivative is sigmoid(x).
double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
}  // namespace

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

#define SL_INSTANTIATE(S)                                                                         \
  template void selective_decay_fwd<S>(int64_t, int64_t, const S*, const S*, const S*, S*, S*);  \
  template void selective_decay_bwd<S>(int64_t, int64_t, const S*, const S*, const S*, const S*, \
                                       const S*, const S*, const S*, S*, S*, S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
