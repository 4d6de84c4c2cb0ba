// Activations, the gated unit and causal conv1d; GELU is the exact (erf) form.
#include "kernels/cpu/elementwise.hpp"

#include <algorithm>
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

template <typename S>
void add(S* y, const S* a, const S* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <typename S>
void affine(S* y, const S* x, double alpha, double beta, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = S(alpha) * x[i] + S(beta);
}

template <typename S>
void fill_zero(S* y, int64_t n) {
  std::fill_n(y, n, S(0));
}

template <typename S>
void copy_rows(S* dst, int64_t dst_stride, const S* src, int64_t src_stride, int64_t rows,
               int64_t width, double scale) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < width; ++i)
      dst[r * dst_stride + i] = S(scale) * src[r * src_stride + i];
}

template <typename S>
void axpy_rows(S* dst, int64_t dst_stride, const S* src, int64_t src_stride, int64_t rows,
               int64_t width, double alpha) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < width; ++i) dst[r * dst_stride + i] += S(alpha) * src[r * src_stride + i];
}

template <typename S>
void silu_gate_fwd(S* y, const S* x, const S* g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * act(Activation::silu, g[i]);
}

template <typename S>
void silu_gate_bwd(S* dx, S* dg, const S* dy, const S* x, const S* g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S d = dy[i];
    dx[i] = d * act(Activation::silu, g[i]);
    dg[i] = d * x[i] * act_grad(Activation::silu, g[i]);
  }
}

template <typename S>
void skip_add_fwd(S* y, const S* a, const S* skip, const S* x, int64_t x_stride, int64_t N,
                  int64_t I, int64_t group) {
  for (int64_t r = 0; r < N; ++r)
    for (int64_t i = 0; i < I; ++i) y[r * I + i] = a[r * I + i] + skip[i / group] * x[r * x_stride + i];
}

template <typename S>
void skip_add_bwd(S* dx, S* dskip, const S* dy, const S* skip, const S* x, int64_t x_stride,
                  int64_t N, int64_t I, int64_t group) {
  for (int64_t r = 0; r < N; ++r)
    for (int64_t i = 0; i < I; ++i) {
      const S d = dy[r * I + i];
      dskip[i / group] += d * x[r * x_stride + i];
      dx[r * x_stride + i] = d * skip[i / group];
    }
}

template <typename S>
void scaled_sigmoid_fwd(S* y, const S* x, double scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = S(scale) * sigmoid(x[i]);
}

template <typename S>
void scaled_sigmoid_bwd(S* dx, const S* dy1, const S* dy2, const S* x, double scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S s = sigmoid(x[i]);
    dx[i] = (dy1[i] + (dy2 ? dy2[i] : S(0))) * S(scale) * s * (S(1) - s);
  }
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
  template void add_inplace<S>(S*, const S*, int64_t);                                           \
  template void add<S>(S*, const S*, const S*, int64_t);                                         \
  template void affine<S>(S*, const S*, double, double, int64_t);                                \
  template void fill_zero<S>(S*, int64_t);                                                       \
  template void copy_rows<S>(S*, int64_t, const S*, int64_t, int64_t, int64_t, double);          \
  template void axpy_rows<S>(S*, int64_t, const S*, int64_t, int64_t, int64_t, double);          \
  template void silu_gate_fwd<S>(S*, const S*, const S*, int64_t);                               \
  template void silu_gate_bwd<S>(S*, S*, const S*, const S*, const S*, int64_t);                 \
  template void skip_add_fwd<S>(S*, const S*, const S*, const S*, int64_t, int64_t, int64_t,     \
                                int64_t);                                                        \
  template void skip_add_bwd<S>(S*, S*, const S*, const S*, const S*, int64_t, int64_t, int64_t, \
                                int64_t);                                                        \
  template void scaled_sigmoid_fwd<S>(S*, const S*, double, int64_t);                            \
  template void scaled_sigmoid_bwd<S>(S*, const S*, const S*, const S*, double, int64_t);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
