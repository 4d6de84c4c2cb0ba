// Activations, the gated unit and causal conv1d; GELU is the exact (erf) form.
#include "kernels/cpu/elementwise.hpp"

#include <cmath>

#include "kernels/error.hpp"

namespace statelab::cpu {

Activation activation_from_name(const std::string& name) {
  if (name == "identity") return Activation::identity;
  if (name == "silu") return Activation::silu;
  if (name == "gelu") return Activation::gelu;
  if (name == "tanh") return Activation::tanh;
  if (name == "sigmoid") return Activation::sigmoid;
  throw Error("unknown activation '" + name + "'; allowed: identity, silu, gelu, tanh, sigmoid");
}

namespace {

template <typename S>
S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}

template <typename S>
S act(Activation a, S x) {
  switch (a) {
    case Activation::identity: return x;
    case Activation::silu: return x * sigmoid(x);
    case Activation::gelu: return S(0.5) * x * (S(1) + std::erf(x * S(M_SQRT1_2)));
    case Activation::tanh: return std::tanh(x);
    case Activation::sigmoid: return sigmoid(x);
  }
  return x;
}

template <typename S>
S act_grad(Activation a, S x) {
  switch (a) {
    case Activation::identity: return S(1);
    case Activation::silu: {
      const S s = sigmoid(x);
      return s * (S(1) + x * (S(1) - s));
    }
    case Activation::gelu: {
      const S pdf = std::exp(S(-0.5) * x * x) * S(0.3989422804014327);  // φ(x)
      return S(0.5) * (S(1) + std::erf(x * S(M_SQRT1_2))) + x * pdf;
    }
    case Activation::tanh: {
      const S t = std::tanh(x);
      return S(1) - t * t;
    }
    case Activation::sigmoid: {
      const S s = sigmoid(x);
      return s * (S(1) - s);
    }
  }
  return S(1);
}

}  // namespace

template <typename S>
void activation_fwd(Activation a, S* y, const S* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = act(a, x[i]);
}

template <typename S>
void activation_bwd(Activation a, S* dx, const S* dy, const S* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * act_grad(a, x[i]);
}

template <typename S>
void gated_fwd(Activation a, S* y, const S* u, int64_t N, int64_t F) {
  for (int64_t r = 0; r < N; ++r) {
    const S* g = u + r * 2 * F;
    for (int64_t f = 0; f < F; ++f) y[r * F + f] = act(a, g[f]) * g[F + f];
  }
}

template <typename S>
void gated_bwd(Activation a, S* du, const S* dy, const S* u, int64_t N, int64_t F) {
  for (int64_t r = 0; r < N; ++r) {
    const S* g = u + r * 2 * F;
    S* dg = du + r * 2 * F;
    for (int64_t f = 0; f < F; ++f) {
      const S d = dy[r * F + f];
      dg[f] = d * g[F + f] * act_grad(a, g[f]);
      dg[F + f] = d * act(a, g[f]);
    }
  }
}

template <typename S>
void causal_conv1d_fwd(S* y, const S* x, const S* w, const S* bias, int64_t B, int64_t T,
                       int64_t C, int64_t K) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      S* yr = y + (b * T + t) * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = bias ? bias[c] : S(0);
      for (int64_t j = 0; j < K; ++j) {
        const int64_t s = t - K + 1 + j;
        if (s < 0) continue;
        const S* xr = x + (b * T + s) * C;
        for (int64_t c = 0; c < C; ++c) yr[c] += w[c * K + j] * xr[c];
      }
    }
}

template <typename S>
void causal_conv1d_bwd(S* dx, S* dw, S* dbias, const S* dy, const S* x, const S* w, int64_t B,
                       int64_t T, int64_t C, int64_t K) {
  for (int64_t i = 0; i < B * T * C; ++i) dx[i] = S(0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const S* dyr = dy + (b * T + t) * C;
      if (dbias)
        for (int64_t c = 0; c < C; ++c) dbias[c] += dyr[c];
      for (int64_t j = 0; j < K; ++j) {
        const int64_t s = t - K + 1 + j;
        if (s < 0) continue;
        const S* xr = x + (b * T + s) * C;
        S* dxr = dx + (b * T + s) * C;
        for (int64_t c = 0; c < C; ++c) {
          dw[c * K + j] += dyr[c] * xr[c];
          dxr[c] += dyr[c] * w[c * K + j];
        }
      }
    }
}

template <typename S>
void add_inplace(S* y, const S* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

#define SL_INSTANTIATE(S)                                                                        \
  template void activation_fwd<S>(Activation, S*, const S*, int64_t);                            \
  template void activation_bwd<S>(Activation, S*, const S*, const S*, int64_t);                  \
  template void gated_fwd<S>(Activation, S*, const S*, int64_t, int64_t);                        \
  template void gated_bwd<S>(Activation, S*, const S*, const S*, int64_t, int64_t);              \
  template void causal_conv1d_fwd<S>(S*, const S*, const S*, const S*, int64_t, int64_t,        \
                                     int64_t, int64_t);                                         \
  template void causal_conv1d_bwd<S>(S*, S*, S*, const S*, const S*, const S*, int64_t, int64_t, \
                                     int64_t, int64_t);                                         \
  template void add_inplace<S>(S*, const S*, int64_t);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
