// LSTM / sLSTM recurrence on Eigen: per step one small GEMM per head for R h_{t-1}, then
// element-wise gates; backward runs time in reverse and forms dR with one GEMM per sequence.
#include "kernels/cpu/nonlinear_recurrence.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/eigen_maps.hpp"
#include "kernels/error.hpp"

namespace statelab::cpu {

namespace {

template <typename S>
S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}

// log σ(x) without overflow for large |x|
template <typename S>
S log_sigmoid(S x) {
  return -(std::max(-x, S(0)) + std::log1p(std::exp(-std::abs(x))));
}

}  // namespace

template <typename S>
void nonlinear_recurrence_check_saved(const NonlinearRecurrence<S>& p, const std::string& who,
                                      bool backward) {
  if (!backward && !p.gates) {
    SL_CHECK_SHAPE(!p.raw && !p.c && !p.n && !p.m,
                   who + ": without gates (an evaluation, h alone) raw, c, n and m must be null");
    return;
  }
  SL_CHECK_SHAPE(p.gates && p.c, who + ": the saved gates and c are required" +
                                     (backward ? " (an evaluation's forward saves none)" : ""));
  if (p.cell == NonlinearCell::slstm) SL_CHECK_SHAPE(p.n && p.m, who + ": sLSTM needs n and m");
}

template <typename S>
void nonlinear_recurrence_fwd(const NonlinearRecurrence<S>& p) {
  const int64_t B = p.B, T = p.T, H = p.H, Dh = p.Dh, D = H * Dh, G = 4 * Dh;
  const bool slstm = p.cell == NonlinearCell::slstm;
  const int64_t rows = B * T * H, width = 2 * Dh;
  nonlinear_recurrence_check_saved(p, "nonlinear_recurrence_fwd", false);
  // A step's pre-activations go to raw where it is saved, else to one step's scratch.
  std::vector<S> scratch(p.raw ? 0 : size_t(B * H * G));
  const int64_t raw_row = p.raw ? T * H * G : H * G;  // between a step's batch rows
  // An evaluation (gates null) keeps a step's gates, and the states of steps t − 1 and t by
  // parity, in scratch instead of the saved tensors.
  const bool saves = p.gates != nullptr;
  std::vector<S> step_gates(saves ? 0 : size_t(G)), carried(saves ? 0 : size_t(6 * B * D));
  // Row (b, t, head) of state `which` (0: c, 1: n, 2: m), whose saved tensor is `saved`.
  auto state_row = [&](S* saved, int which, int64_t b, int64_t t, int64_t hd) {
    if (saves) return saved + ((b * T + t) * H + hd) * Dh;
    return carried.data() + ((t & 1) * 3 + which) * B * D + (b * H + hd) * Dh;
  };
  for (int64_t t = 0; t < T; ++t) {
    S* raw_t = p.raw ? p.raw + t * H * G : scratch.data();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hd = 0; hd < H; ++hd) {
        const int64_t r = (b * T + t) * H + hd;
        S* dst = raw_t + b * raw_row + hd * G;
        std::copy_n(p.pre + r * width, width, dst);
        std::copy_n(p.pre + (rows + r) * width, width, dst + width);
      }
    if (t > 0)
      for (int64_t hd = 0; hd < H; ++hd)
        mat(raw_t + hd * G, B, G, raw_row).noalias() +=
            cmat(p.h + ((t - 1) * H + hd) * Dh, B, Dh, T * D) * cmat(p.R + hd * Dh * G, Dh, G);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hd = 0; hd < H; ++hd) {
        const int64_t gi = ((b * T + t) * H + hd) * G;  // gate row of (b, t, head)
        const int64_t si = ((b * T + t) * H + hd) * Dh;  // state row
        const S* r = raw_t + b * raw_row + hd * G;
        S* g = saves ? p.gates + gi : step_gates.data();
        S* c_t = state_row(p.c, 0, b, t, hd);
        const S* c_prev_row = t > 0 ? state_row(p.c, 0, b, t - 1, hd) : nullptr;
        S* n_t = slstm ? state_row(p.n, 1, b, t, hd) : nullptr;
        S* m_t = slstm ? state_row(p.m, 2, b, t, hd) : nullptr;
        const S* n_prev_row = slstm && t > 0 ? state_row(p.n, 1, b, t - 1, hd) : nullptr;
        const S* m_prev_row = slstm && t > 0 ? state_row(p.m, 2, b, t - 1, hd) : nullptr;
        for (int64_t k = 0; k < Dh; ++k) {
          const S z = std::tanh(r[2 * Dh + k]);
          const S o = sigmoid(r[3 * Dh + k]);
          const S c_prev = t > 0 ? c_prev_row[k] : S(0);
          if (!slstm) {
            const S i = sigmoid(r[k]), f = sigmoid(r[Dh + k]);
            const S c = f * c_prev + i * z;
            g[k] = i, g[Dh + k] = f, g[2 * Dh + k] = z, g[3 * Dh + k] = o;
            c_t[k] = c;
            p.h[si + k] = o * std::tanh(c);
            continue;
          }
          const S log_f = p.exp_forget ? r[Dh + k] : log_sigmoid(r[Dh + k]);
          S m, i_s, f_s;
          if (t == 0) {
            m = r[k];
            i_s = S(1);
            f_s = S(0);
          } else {
            const S m_prev = m_prev_row[k];
            m = std::max(log_f + m_prev, r[k]);
            i_s = std::exp(r[k] - m);
            f_s = std::exp(log_f + m_prev - m);
          }
          const S n_prev = t > 0 ? n_prev_row[k] : S(0);
          const S c = f_s * c_prev + i_s * z;
          const S n = f_s * n_prev + i_s;
          g[k] = i_s, g[Dh + k] = f_s, g[2 * Dh + k] = z, g[3 * Dh + k] = o;
          c_t[k] = c;
          n_t[k] = n;
          m_t[k] = m;
          p.h[si + k] = o * c / n;
        }
      }
  }
}

template <typename S>
void nonlinear_recurrence_bwd(const NonlinearRecurrence<S>& p, const S* dh, S* dpre, S* dR,
                              S* work) {
  const int64_t B = p.B, T = p.T, H = p.H, Dh = p.Dh, D = H * Dh, G = 4 * Dh;
  const bool slstm = p.cell == NonlinearCell::slstm;
  const int64_t width = 2 * Dh, half = B * T * H * width;  // dpre's (z̃, õ) half starts at half
  nonlinear_recurrence_check_saved(p, "nonlinear_recurrence_bwd", true);
  SL_CHECK_SHAPE(p.raw || !slstm || p.exp_forget,
                 "nonlinear_recurrence_bwd: the sLSTM with a sigmoid forget gate needs the saved "
                 "pre-activations raw");
  S* dh_rec = work;           // [B, H, Dh] gradient reaching h_t through R from step t+1
  S* dc_carry = work + B * D;  // [B, H, Dh] gradient reaching c_t from c_{t+1}
  S* dn_carry = work + 2 * B * D;
  std::fill_n(work, 3 * B * D, S(0));
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hd = 0; hd < H; ++hd) {
        const int64_t gi = ((b * T + t) * H + hd) * G;
        const int64_t si = ((b * T + t) * H + hd) * Dh;
        const int64_t prev = si - H * Dh;
        const int64_t wi = (b * H + hd) * Dh;
        const S* g = p.gates + gi;
        S* d_if = dpre + ((b * T + t) * H + hd) * width;  // dĩ, df̃
        S* d_zo = d_if + half;                            // dz̃, dõ
        for (int64_t k = 0; k < Dh; ++k) {
          const S gh = dh[si + k] + dh_rec[wi + k];
          const S i = g[k], f = g[Dh + k], z = g[2 * Dh + k], o = g[3 * Dh + k];
          const S c = p.c[si + k];
          const S c_prev = t > 0 ? p.c[prev + k] : S(0);
          if (!slstm) {
            const S tc = std::tanh(c);
            const S dc = dc_carry[wi + k] + gh * o * (S(1) - tc * tc);
            d_if[k] = dc * z * i * (S(1) - i);
            d_if[Dh + k] = dc * c_prev * f * (S(1) - f);
            d_zo[k] = dc * i * (S(1) - z * z);
            d_zo[Dh + k] = gh * tc * o * (S(1) - o);
            dc_carry[wi + k] = dc * f;
            continue;
          }
          const S n = p.n[si + k];
          const S n_prev = t > 0 ? p.n[prev + k] : S(0);
          const S dc = dc_carry[wi + k] + gh * o / n;
          const S dn = dn_carry[wi + k] - gh * o * c / (n * n);
          const S d_f_s = dc * c_prev + dn * n_prev;
          const S d_i_s = dc * z + dn;
          const S d_log_f = d_f_s * f;
          d_if[k] = d_i_s * i;
          d_if[Dh + k] = p.exp_forget ? d_log_f : d_log_f * (S(1) - sigmoid(p.raw[gi + Dh + k]));
          d_zo[k] = dc * i * (S(1) - z * z);
          d_zo[Dh + k] = gh * (c / n) * o * (S(1) - o);
          dc_carry[wi + k] = dc * f;
          dn_carry[wi + k] = dn * f;
        }
      }
    // The gradient that reaches h_{t-1} through R: dh_rec = dpre_t · Rᵀ per head, a gate half
    // (R's columns 2Dh·q onwards) at a time.
    if (t > 0)
      for (int64_t hd = 0; hd < H; ++hd) {
        auto rec = mat(dh_rec + hd * Dh, B, Dh, D);
        rec.setZero();
        for (int64_t q = 0; q < 2; ++q)
          rec.noalias() += cmat(dpre + q * half + (t * H + hd) * width, B, width, T * H * width) *
                           cmat(p.R + hd * Dh * G + q * width, Dh, width, G).transpose();
      }
  }
  // dR_h = Σ_{b, t>=1} h_{t-1}ᵀ · dpre_t, one GEMM per sequence, head and gate half.
  if (T > 1)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hd = 0; hd < H; ++hd)
        for (int64_t q = 0; q < 2; ++q)
          mat(dR + hd * Dh * G + q * width, Dh, width, G).noalias() +=
              cmat(p.h + (b * T * H + hd) * Dh, T - 1, Dh, D).transpose() *
              cmat(dpre + q * half + ((b * T + 1) * H + hd) * width, T - 1, width, H * width);
}

#define SL_INSTANTIATE(S)                                                                    \
  template void nonlinear_recurrence_check_saved<S>(const NonlinearRecurrence<S>&,           \
                                                    const std::string&, bool);               \
  template void nonlinear_recurrence_fwd<S>(const NonlinearRecurrence<S>&);                  \
  template void nonlinear_recurrence_bwd<S>(const NonlinearRecurrence<S>&, const S*, S*, S*, \
                                            S*);
SL_INSTANTIATE(float)
SL_INSTANTIATE(double)
#undef SL_INSTANTIATE

}  // namespace statelab::cpu
