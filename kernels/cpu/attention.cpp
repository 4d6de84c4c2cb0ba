// RoPE and tiled causal attention on Eigen; instantiated for float (training) and double
// (gradient checks).
#include "kernels/cpu/attention.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cpu/eigen_maps.hpp"
#include "kernels/error.hpp"

namespace statelab::cpu {

namespace {

// Rotation by +angle (forward) or −angle (backward: R is orthogonal, so Rᵀ = R(−angle)).
template <typename S>
void rope_rotate(S* y, const S* x, int64_t B, int64_t T, int64_t H, int64_t Dh, double base,
                 double direction) {
  SL_CHECK_SHAPE(B >= 1 && T >= 1 && H >= 1 && Dh >= 1, "RoPE: empty shape");
  SL_CHECK_SHAPE(Dh % 2 == 0, "RoPE needs an even head dimension, got Dh = " + std::to_string(Dh));
  SL_CHECK(base > 0, "RoPE base must be positive");
  const int64_t half = Dh / 2;
  // Frequencies and angles come in chunks held on the stack: trigonometry once per (t, pair),
  // shared by every batch row and head, and no allocation.
  constexpr int64_t kChunk = 32;
  double freq[kChunk], cs[kChunk], sn[kChunk];
  for (int64_t i0 = 0; i0 < half; i0 += kChunk) {
    const int64_t n = std::min(kChunk, half - i0);
    for (int64_t j = 0; j < n; ++j) freq[j] = std::pow(base, -2.0 * double(i0 + j) / double(Dh));
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 0; j < n; ++j) {
        const double angle = double(t) * freq[j];
        cs[j] = std::cos(angle);
        sn[j] = direction * std::sin(angle);
      }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          const int64_t off = ((b * T + t) * H + h) * Dh + 2 * i0;
          for (int64_t j = 0; j < n; ++j) {
            const double x0 = double(x[off + 2 * j]), x1 = double(x[off + 2 * j + 1]);
            y[off + 2 * j] = S(x0 * cs[j] - x1 * sn[j]);
            y[off + 2 * j + 1] = S(x0 * sn[j] + x1 * cs[j]);
          }
        }
    }
  }
}

template <typename S>
void check_attention_shape(const CausalAttention<S>& a) {
  SL_CHECK_SHAPE(a.B >= 1 && a.T >= 1 && a.H >= 1 && a.Dh >= 1,
                 "attention: empty shape B=" + std::to_string(a.B) + " T=" + std::to_string(a.T) +
                     " H=" + std::to_string(a.H) + " Dh=" + std::to_string(a.Dh));
}

template <typename S>
void check_attention(const CausalAttention<S>& a) {
  check_attention_shape(a);
  SL_CHECK(a.q && a.k && a.v && a.o && a.lse, "attention: missing tensor");
}

// Query rows t0 … t0+rows−1 of head (b, h) against keys 0 … t0+rows−1: P [rows, keys] gets
// p_ts = exp(q_t·k_s / √Dh − lse_t), zero above the diagonal, and log_P (when non-null) the
// causal part's log p_ts = score − lse_t. Rebuilt from lse instead of stored, which keeps
// backward's and the probe's memory O(tile · T); both go through this one function, so the probe
// reports the probabilities backward differentiates.
template <typename S>
void probability_tile(const CausalAttention<S>& a, int64_t b, int64_t h, int64_t t0, S* P_data,
                      S* log_P_data) {
  const int64_t T = a.T, H = a.H, Dh = a.Dh, row = H * Dh;
  const int64_t rows = std::min(kAttentionRows, T - t0), keys = t0 + rows;
  const int64_t head = (b * T * H + h) * Dh;
  const S scale = S(1.0 / std::sqrt(double(Dh)));
  auto P = mat(P_data, rows, keys);
  P.noalias() =
      cmat(a.q + head + t0 * row, rows, Dh, row) * cmat(a.k + head, keys, Dh, row).transpose();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = t0 + r + 1;
    const S lse = a.lse[(b * T + t0 + r) * H + h];
    auto p = P.row(r);
    p.head(n) = p.head(n).array() * scale - lse;
    if (log_P_data) mat(log_P_data, rows, keys).row(r).head(n) = p.head(n);
    p.head(n) = p.head(n).array().exp();
    p.tail(keys - n).setZero();
  }
}

}  // namespace

template <typename S>
void rope_fwd(S* y, const S* x, int64_t B, int64_t T, int64_t H, int64_t Dh, double base) {
  rope_rotate(y, x, B, T, H, Dh, base, 1.0);
}

template <typename S>
void rope_bwd(S* dx, const S* dy, int64_t B, int64_t T, int64_t H, int64_t Dh, double base) {
  rope_rotate(dx, dy, B, T, H, Dh, base, -1.0);
}

int64_t causal_attention_work_size(int64_t T) { return 2 * std::min(T, kAttentionRows) * T; }

template <typename S>
void causal_attention_fwd(const CausalAttention<S>& a, S* work) {
  check_attention(a);
  const int64_t T = a.T, H = a.H, Dh = a.Dh, row = H * Dh;
  const S scale = S(1.0 / std::sqrt(double(Dh)));
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t head = (b * T * H + h) * Dh;  // element (b, 0, h, 0)
      const auto K = cmat(a.k + head, T, Dh, row);
      const auto V = cmat(a.v + head, T, Dh, row);
      for (int64_t t0 = 0; t0 < T; t0 += kAttentionRows) {
        // Query rows t0 … t0+rows−1 see keys 0 … keys−1; entries above the diagonal are
        // computed by the GEMM and then ignored.
        const int64_t rows = std::min(kAttentionRows, T - t0), keys = t0 + rows;
        auto P = mat(work, rows, keys);
        P.noalias() = cmat(a.q + head + t0 * row, rows, Dh, row) * K.topRows(keys).transpose();
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t n = t0 + r + 1;
          auto p = P.row(r);
          p.head(n) *= scale;
          const S m = p.head(n).maxCoeff();
          p.head(n) = (p.head(n).array() - m).exp();
          const S l = p.head(n).sum();
          p.head(n) /= l;
          p.tail(keys - n).setZero();
          a.lse[(b * T + t0 + r) * H + h] = m + std::log(l);
        }
        mat(a.o + head + t0 * row, rows, Dh, row).noalias() = P * V.topRows(keys);
      }
    }
}

template <typename S>
void causal_attention_bwd(const CausalAttention<S>& a, const S* dout, S* dq, S* dk, S* dv,
                          S* work) {
  check_attention(a);
  const int64_t T = a.T, H = a.H, Dh = a.Dh, row = H * Dh;
  const S scale = S(1.0 / std::sqrt(double(Dh)));
  // dk and dv collect contributions from every later query tile.
  std::fill_n(dk, a.B * T * row, S(0));
  std::fill_n(dv, a.B * T * row, S(0));
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t head = (b * T * H + h) * Dh;
      const auto K = cmat(a.k + head, T, Dh, row);
      const auto V = cmat(a.v + head, T, Dh, row);
      auto dK = mat(dk + head, T, Dh, row);
      auto dV = mat(dv + head, T, Dh, row);
      for (int64_t t0 = 0; t0 < T; t0 += kAttentionRows) {
        const int64_t rows = std::min(kAttentionRows, T - t0), keys = t0 + rows;
        const int64_t at = head + t0 * row;
        const auto Q = cmat(a.q + at, rows, Dh, row);
        const auto O = cmat(a.o + at, rows, Dh, row);
        const auto dO = cmat(dout + at, rows, Dh, row);
        probability_tile<S>(a, b, h, t0, work, nullptr);
        const auto P = cmat(work, rows, keys);
        auto dS = mat(work + rows * keys, rows, keys);
        dS.noalias() = dO * V.topRows(keys).transpose();  // dP = dO Vᵀ, turned into dS below
        for (int64_t r = 0; r < rows; ++r) {
          const auto p = P.row(r);
          // Softmax backward: dS = P ⊙ (dP − rowsum(P ⊙ dP)), and rowsum(P ⊙ dP) = dO·o.
          // The 1/√Dh of the scores is folded in here so that both products below carry it.
          const S d = dO.row(r).dot(O.row(r));
          dS.row(r) = (p.array() * (dS.row(r).array() - d)) * scale;
        }
        mat(dq + at, rows, Dh, row).noalias() = dS * K.topRows(keys);
        dK.topRows(keys).noalias() += dS.transpose() * Q;
        dV.topRows(keys).noalias() += P.transpose() * dO;
      }
    }
}

// log p is taken as score − lse, not as log of the rounded p: accurate where p is tiny, and
// finite where p underflows to 0; such terms count as 0, the limit of p log p.
template <typename S>
void causal_attention_probe(const CausalAttention<S>& a, S* entropy, S* map, S* work) {
  check_attention_shape(a);
  SL_CHECK(a.q && a.k && a.lse && entropy && work, "attention probe: missing tensor");
  const int64_t T = a.T, H = a.H;
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t0 = 0; t0 < T; t0 += kAttentionRows) {
        const int64_t rows = std::min(kAttentionRows, T - t0), keys = t0 + rows;
        probability_tile(a, b, h, t0, work, work + rows * keys);
        const auto P = cmat(work, rows, keys), log_P = cmat(work + rows * keys, rows, keys);
        for (int64_t r = 0; r < rows; ++r) {
          S sum = 0;
          for (int64_t s = 0; s <= t0 + r; ++s)
            if (P(r, s) > 0) sum -= P(r, s) * log_P(r, s);
          entropy[(b * T + t0 + r) * H + h] = sum;
          if (map) {
            S* out = map + ((b * H + h) * T + t0 + r) * T;
            std::copy_n(P.row(r).data(), keys, out);
            std::fill(out + keys, out + T, S(0));
          }
        }
      }
}

#define SL_INSTANTIATE(S)                                                                     \
  template void rope_fwd<S>(S*, const S*, int64_t, int64_t, int64_t, int64_t, double);        \
  template void rope_bwd<S>(S*, const S*, int64_t, int64_t, int64_t, int64_t, double);        \
  template void causal_attention_fwd<S>(const CausalAttention<S>&, S*);                       \
  template void causal_attention_bwd<S>(const CausalAttention<S>&, const S*, S*, S*, S*, S*); \
  template void causal_attention_probe<S>(const CausalAttention<S>&, S*, S*, S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
