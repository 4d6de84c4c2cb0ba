// The mLSTM stabilizer scan, forward and backward, per (batch row, head) over time.
#include "kernels/cpu/stabilizer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace statelab::cpu {

namespace {

// log σ(x) = −softplus(−x), computed without overflow for either sign of x.
double log_sigmoid(double x) {
  return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}
double sigmoid(double x) {
  return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}

// log|f| and sign(f) of the forget gate.
void log_forget(ForgetGate kind, double x, double& log_abs, double& sign) {
  switch (kind) {
    case ForgetGate::sigmoid:
      log_abs = log_sigmoid(x), sign = 1;
      return;
    case ForgetGate::exp:
      log_abs = x, sign = 1;
      return;
    case ForgetGate::signed_sigmoid: {
      const double f = std::tanh(x / 2);  // = 2σ(x) − 1, without cancellation near 0
      log_abs = std::log(std::abs(f)), sign = f < 0 ? -1 : 1;
      return;
    }
  }
}

}  // namespace

template <typename S>
void stabilized_gates_fwd(ForgetGate kind, int64_t B, int64_t T, int64_t H, const S* igate,
                          const S* fgate, S* m, S* a, S* c, S* floor) {
  const double kLargestFloor = double(std::numeric_limits<S>::max());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      double m_prev = -std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * T + t) * H + h;
        double log_f = 0, sign = 1;
        log_forget(kind, double(fgate[i]), log_f, sign);
        const double decayed = log_f + m_prev;  // −∞ on the first step
        const double m_t = std::max(decayed, double(igate[i]));
        m[i] = S(m_t);
        a[i] = S(sign * std::exp(decayed - m_t));
        c[i] = S(std::exp(double(igate[i]) - m_t));
        floor[i] = S(std::min(std::exp(-m_t), kLargestFloor));
        m_prev = m_t;
      }
    }
}

namespace {

// d log|f| / df̃ of each forget gate kind (the signed gate's is 1/sinh(x), singular where f = 0,
// which a step only reaches through the decayed branch of the max when f is far from 0).
double dlog_forget(ForgetGate kind, double x) {
  switch (kind) {
    case ForgetGate::sigmoid: return 1 - sigmoid(x);
    case ForgetGate::exp: return 1;
    case ForgetGate::signed_sigmoid: return 1 / std::sinh(x);
  }
  return 0;
}

}  // namespace

// Reverse scan per (b, h). With decayed_t = log|f_t| + m_{t−1} and m_t = max(decayed_t, ĩ_t):
//   ∂L/∂m_t = −da·a − dc·c − dfloor·floor + ∂L/∂decayed_{t+1}
//   ∂L/∂decayed_t = da·a + [decayed branch] ∂L/∂m_t,   ∂L/∂ĩ_t = dc·c + [input branch] ∂L/∂m_t
// and ∂L/∂f̃_t = ∂L/∂decayed_t · d log|f|/df̃. The direct part da·a·d log|f|/df̃ is computed as
// da·∂a/∂f̃, finite even where f = 0.
template <typename S>
void stabilized_gates_bwd(ForgetGate kind, int64_t B, int64_t T, int64_t H, const S* igate,
                          const S* fgate, const S* m, const S* a, const S* c, const S* floor,
                          const S* da, const S* dc, const S* dfloor, S* dig, S* dfg) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      double g_decayed_next = 0;  // ∂L/∂decayed_{t+1}, which is ∂L/∂m_t through m_t's use there
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t i = (b * T + t) * H + h;
        const double x = double(fgate[i]);
        const double ga = double(da[i]) * double(a[i]), gc = double(dc[i]) * double(c[i]);
        const double g_m = -ga - gc - (dfloor ? double(dfloor[i]) * double(floor[i]) : 0.0) +
                           g_decayed_next;
        // Forward's m_t equals ĩ_t exactly when the input branch won (or tied).
        const bool input_branch = t == 0 || m[i] == igate[i];
        double da_dx = 0;  // ∂a/∂f̃ with m fixed
        switch (kind) {
          case ForgetGate::sigmoid:  // a = σ(x)·e  =>  a' = a·(1 − σ(x))
            da_dx = double(a[i]) * (1 - sigmoid(x));
            break;
          case ForgetGate::exp:  // a = exp(x)·e  =>  a' = a
            da_dx = double(a[i]);
            break;
          case ForgetGate::signed_sigmoid:  // a = (2σ(x) − 1)·e  =>  a' = 2σ(x)σ(−x)·e
            if (t > 0)
              da_dx = std::exp(std::log(2.0) + log_sigmoid(x) + log_sigmoid(-x) + double(m[i - H]) -
                               double(m[i]));
            break;
        }
        double g_f = double(da[i]) * da_dx;
        if (input_branch) {
          dig[i] = S(gc + g_m);
          g_decayed_next = ga;
        } else {
          dig[i] = S(gc);
          g_f += g_m * dlog_forget(kind, x);
          g_decayed_next = ga + g_m;
        }
        dfg[i] = S(g_f);
      }
    }
}

#define SL_INSTANTIATE(S)                                                                          \
  template void stabilized_gates_fwd<S>(ForgetGate, int64_t, int64_t, int64_t, const S*, const S*, \
                                        S*, S*, S*, S*);                                           \
  template void stabilized_gates_bwd<S>(ForgetGate, int64_t, int64_t, int64_t, const S*, const S*, \
                                        const S*, const S*, const S*, const S*, const S*,         \
                                        const S*, const S*, S*, S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
