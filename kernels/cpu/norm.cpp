// LayerNorm / GroupNorm / RMSNorm, row by row; statistics in double for float inputs so that
// long rows do not lose the mean.
#include "kernels/cpu/norm.hpp"

#include <cmath>

namespace statelab::cpu {

template <typename S>
void group_layernorm_fwd(S* y, S* mean, S* rstd, const S* x, const S* w, const S* b, int64_t N,
                         int64_t G, int64_t Dg, double eps) {
  const int64_t D = G * Dg;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const S* xr = x + n * D + g * Dg;
      double sum = 0, sq = 0;
      for (int64_t d = 0; d < Dg; ++d) sum += xr[d];
      const double mu = sum / Dg;
      for (int64_t d = 0; d < Dg; ++d) sq += (xr[d] - mu) * (xr[d] - mu);
      const double rs = 1.0 / std::sqrt(sq / Dg + eps);
      mean[n * G + g] = S(mu);
      rstd[n * G + g] = S(rs);
      S* yr = y + n * D + g * Dg;
      for (int64_t d = 0; d < Dg; ++d) {
        const int64_t k = g * Dg + d;
        yr[d] = S((xr[d] - mu) * rs) * w[k] + (b ? b[k] : S(0));
      }
    }
  }
}

template <typename S>
void group_layernorm_bwd(S* dx, S* dw, S* db, const S* dy, const S* x, const S* mean,
                         const S* rstd, const S* w, int64_t N, int64_t G, int64_t Dg,
                         const S* skip) {
  const int64_t D = G * Dg;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const int64_t row = n * D + g * Dg;
      const S mu = mean[n * G + g], rs = rstd[n * G + g];
      double mean_dxh = 0, mean_dxh_xh = 0;
      for (int64_t d = 0; d < Dg; ++d) {
        const S xh = (x[row + d] - mu) * rs;
        const S dxh = dy[row + d] * w[g * Dg + d];
        mean_dxh += dxh;
        mean_dxh_xh += dxh * xh;
        dw[g * Dg + d] += dy[row + d] * xh;
        if (db) db[g * Dg + d] += dy[row + d];
      }
      mean_dxh /= Dg;
      mean_dxh_xh /= Dg;
      for (int64_t d = 0; d < Dg; ++d) {
        const S xh = (x[row + d] - mu) * rs;
        const S dxh = dy[row + d] * w[g * Dg + d];
        dx[row + d] =
            rs * (dxh - S(mean_dxh) - xh * S(mean_dxh_xh)) + (skip ? skip[row + d] : S(0));
      }
    }
  }
}

template <typename S>
void rmsnorm_fwd(S* y, S* rstd, const S* x, const S* w, int64_t N, int64_t D, double eps) {
  for (int64_t n = 0; n < N; ++n) {
    double sq = 0;
    for (int64_t d = 0; d < D; ++d) sq += double(x[n * D + d]) * x[n * D + d];
    const S rs = S(1.0 / std::sqrt(sq / D + eps));
    rstd[n] = rs;
    for (int64_t d = 0; d < D; ++d) y[n * D + d] = x[n * D + d] * rs * w[d];
  }
}

template <typename S>
void rmsnorm_bwd(S* dx, S* dw, const S* dy, const S* x, const S* rstd, const S* w, int64_t N,
                 int64_t D, const S* skip) {
  for (int64_t n = 0; n < N; ++n) {
    const S rs = rstd[n];
    double mean_dxh_xh = 0;
    for (int64_t d = 0; d < D; ++d) {
      const S xh = x[n * D + d] * rs;
      mean_dxh_xh += dy[n * D + d] * w[d] * xh;
      dw[d] += dy[n * D + d] * xh;
    }
    mean_dxh_xh /= D;
    for (int64_t d = 0; d < D; ++d) {
      const S xh = x[n * D + d] * rs;
      dx[n * D + d] =
          rs * (dy[n * D + d] * w[d] - xh * S(mean_dxh_xh)) + (skip ? skip[n * D + d] : S(0));
    }
  }
}

template <typename S>
void l2norm_fwd(S* y, S* rnorm, const S* x, int64_t N, int64_t D, double eps) {
  for (int64_t n = 0; n < N; ++n) {
    double sq = 0;
    for (int64_t d = 0; d < D; ++d) sq += double(x[n * D + d]) * x[n * D + d];
    const S r = S(1.0 / std::sqrt(sq + eps));
    rnorm[n] = r;
    for (int64_t d = 0; d < D; ++d) y[n * D + d] = x[n * D + d] * r;
  }
}

// With y = x·r and r = (Σx² + eps)^(-1/2): dx = r·(dy − y·(y·dy)).
template <typename S>
void l2norm_bwd(S* dx, const S* dy, const S* y, const S* rnorm, int64_t N, int64_t D) {
  for (int64_t n = 0; n < N; ++n) {
    double y_dy = 0;
    for (int64_t d = 0; d < D; ++d) y_dy += double(y[n * D + d]) * dy[n * D + d];
    for (int64_t d = 0; d < D; ++d)
      dx[n * D + d] = rnorm[n] * (dy[n * D + d] - y[n * D + d] * S(y_dy));
  }
}

#define SL_INSTANTIATE(S)                                                                          \
  template void group_layernorm_fwd<S>(S*, S*, S*, const S*, const S*, const S*, int64_t, int64_t, \
                                       int64_t, double);                                           \
  template void group_layernorm_bwd<S>(S*, S*, S*, const S*, const S*, const S*, const S*,         \
                                       const S*, int64_t, int64_t, int64_t, const S*);             \
  template void rmsnorm_fwd<S>(S*, S*, const S*, const S*, int64_t, int64_t, double);              \
  template void rmsnorm_bwd<S>(S*, S*, const S*, const S*, const S*, const S*, int64_t, int64_t,   \
                               const S*);                                                          \
  template void l2norm_fwd<S>(S*, S*, const S*, int64_t, int64_t, double);                         \
  template void l2norm_bwd<S>(S*, const S*, const S*, const S*, int64_t, int64_t);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
