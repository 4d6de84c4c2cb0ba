// The non-linear recurrence family (LSTM, sLSTM) on the CPU, forward and backward.
// The input part of every gate (W x_t + b for all t) is one GEMM done by the caller; this loop
// adds the recurrent part R h_{t-1} head by head (R is block-diagonal: one Dh×Dh block per head
// and gate; LSTM is the one-head case, i.e. a full R), applies the gate non-linearities and
// updates the state. It saves the activated gates and the states, which backward needs and
// probes report, and the pre-activations where asked. Checked by finite differences in double
// (tests/kernels).
#pragma once

#include <cstdint>
#include <string>

namespace statelab::cpu {

enum class NonlinearCell { lstm, slstm };

// Gate order everywhere: i, f, z, o.  Layouts are batch-major; Dh = units per head. The input
// contributions and their gradients come in halves, [2, B, T, H, 2, Dh]: the (ĩ, f̃) half of
// every (b, t, head) row, then the (z̃, õ) half, i.e. the two input projections' outputs one
// after the other, as they are written; the saved raw and gates hold all four gates per row.
template <typename S>
struct NonlinearRecurrence {
  NonlinearCell cell = NonlinearCell::slstm;
  bool exp_forget = false;  // sLSTM: forget gate exp(f̃) instead of σ(f̃)
  int64_t B = 0, T = 0, H = 0, Dh = 0;
  const S* pre = nullptr;  // [2, B, T, H, 2, Dh] input contribution W x_t + b
  const S* R = nullptr;    // [H, Dh, 4, Dh]: raw[b,h,g,:] += Σ_k h_{t-1}[b,h,k] · R[h,k,g,:]
  // Saved by forward. raw may be null, and is then not written: only the sLSTM's backward with
  // a σ forget gate and the probes of the sLSTM's pre-activations read it back. gates null (and
  // raw, c, n, m with it) is an evaluation's forward: it writes h alone, which nothing but the
  // next layer reads, and backward cannot follow it.
  S* raw = nullptr;    // [B, T, H, 4, Dh] pre-activations ĩ, f̃, z̃, õ
  S* gates = nullptr;  // [B, T, H, 4, Dh] LSTM: σ(ĩ), σ(f̃), tanh(z̃), σ(õ); sLSTM: i', f', z, o
  S* c = nullptr;      // [B, T, H, Dh] cell state
  S* n = nullptr;      // [B, T, H, Dh] normalizer (sLSTM only)
  S* m = nullptr;      // [B, T, H, Dh] stabilizer (sLSTM only)
  S* h = nullptr;      // [B, T, H, Dh] hidden state = the output
};

// The saved tensors a call needs, for both twins: a forward saves all of them or, with gates null
// (an evaluation), none (raw, c, n and m null too); backward reads the saved gates and c, and
// the sLSTM's n and m. Throws ShapeError naming `who`.
template <typename S>
void nonlinear_recurrence_check_saved(const NonlinearRecurrence<S>& p, const std::string& who,
                                      bool backward);

// Forward from a zero state. sLSTM: m_t = max(log f_t + m_{t-1}, ĩ_t) with m_0 = −∞, so the
// first step has i' = 1 and f' = 0 (the reference code's rule); thereafter n_t >= 1, so
// h = o·c/n never divides by zero. h, c and n are invariant to the choice of m.
template <typename S>
void nonlinear_recurrence_fwd(const NonlinearRecurrence<S>& p);

// dh: [B, T, H, Dh] gradient of the loss w.r.t. every h_t from above (consumed read-only).
// dpre: [2, B, T, H, 2, Dh] overwritten; dR: [H, Dh, 4, Dh] accumulated.
// work: 3·B·H·Dh scratch elements (no allocation inside the step loop).
// m is treated as a constant: h does not depend on it, so its total derivative is zero.
template <typename S>
void nonlinear_recurrence_bwd(const NonlinearRecurrence<S>& p, const S* dh, S* dpre, S* dR,
                              S* work);

}  // namespace statelab::cpu
