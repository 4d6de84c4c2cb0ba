// MlstmBlock: wiring of the up/down projections, conv, q/k/v, the stabilizer scan and the
// unified linear recurrence.
#include "cells/mlstm_block.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cells/linear_cell.hpp"
#include "cells/non_finite.hpp"
#include "cells/probe_fill.hpp"
#include "kernels/ops.hpp"

namespace statelab {

namespace {

// The xLSTM reference's h = C q / (max(|nᵀq|, exp(−m)) + 1e-6).
constexpr double kMlstmDivisorEps = 1e-6;

cpu::ForgetGate forget_gate_of(const ModelConfig& cfg) {
  if (cfg.eigen_range == "pm1") return cpu::ForgetGate::signed_sigmoid;
  return cfg.mlstm.forget_gate == "exp" ? cpu::ForgetGate::exp : cpu::ForgetGate::sigmoid;
}

}  // namespace

template <typename S>
MlstmBlock<S>::MlstmBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                          const ModelConfig& cfg, int n_blocks)
    : ps_(ps),
      arena_(arena),
      forget_(forget_gate_of(cfg)),
      D_(cfg.d_model),
      I_(int64_t(cfg.mlstm.proj_factor) * cfg.d_model),
      H_(cfg.heads),
      Dh_(I_ / H_),
      chunk_(cfg.chunk_size),
      norm_(ps, arena, name + ".norm", 1, D_, true),
      up_x_(ps, name + ".up_x", D_, I_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      up_z_(ps, name + ".up_z", D_, I_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      conv_(ps, name + ".cell.conv", I_, cfg.mlstm.conv_kernel),
      qk_proj_(ps, name + ".cell.qk_proj", I_, 2 * I_, false,
               init::normal(1.0 / std::sqrt(double(I_)))),
      v_proj_(ps, name + ".cell.v_proj", I_, I_, false, init::normal(1.0 / std::sqrt(double(I_)))),
      // The reference initialisation: gate weights zero; input gate bias N(0, 0.1); forget gate
      // bias linspace(3, 6) over heads, so memory starts long.
      igate_(ps, name + ".cell.igate", 3 * I_, H_, true, init::zeros(), init::normal(0.1)),
      fgate_(ps, name + ".cell.fgate", 3 * I_, H_, true, init::zeros(),
             [H = H_](Rng&, int64_t h) {
               return H > 1 ? 3.0 + 3.0 * double(h) / double(H - 1) : 3.0;
             }),
      head_norm_(ps, arena, name + ".cell.head_norm", H_, Dh_, false),
      down_(ps, name + ".down", I_, D_, false,
            init::normal(1.0 / std::sqrt(double(I_) * 2.0 * n_blocks))) {
  skip_ = ps.add(name + ".cell.skip", {I_}, init::constant(1.0), false);
  const int64_t D = D_, I = I_, H = H_;
  xn_ = arena.reserve(D);
  xm_ = arena.reserve(I);
  z_ = arena.reserve(I);
  xconv_ = arena.reserve(I);
  xc_ = arena.reserve(I);
  qk_ = arena.reserve(2 * I);
  v_ = arena.reserve(I);
  qkv_ = arena.reserve(3 * I);
  ks_ = arena.reserve(I);
  ig_ = arena.reserve(H);
  fg_ = arena.reserve(H);
  m_ = arena.reserve(H);
  a_ = arena.reserve(H);
  c_ = arena.reserve(H);
  floor_ = arena.reserve(H);
  h_ = arena.reserve(I);
  boundary_ = arena.reserve(boundary_per_token(H, Dh_, Dh_, true, chunk_));
  hn_ = arena.reserve(I);
  hskip_ = arena.reserve(I);
  hstate_ = arena.reserve(I);
  const auto bwd = SlotUse::backward;
  dhstate_ = arena.reserve(I, bwd);
  dhskip_ = arena.reserve(I, bwd);
  dz_ = arena.reserve(I, bwd);
  dh_ = arena.reserve(I, bwd);
  dq_ = arena.reserve(I, bwd);
  dks_ = arena.reserve(I, bwd);
  dv_ = arena.reserve(I, bwd);
  da_ = arena.reserve(H, bwd);
  dc_ = arena.reserve(H, bwd);
  dfloor_ = arena.reserve(H, bwd);
  dig_ = arena.reserve(H, bwd);
  dfg_ = arena.reserve(H, bwd);
  dqkv_ = arena.reserve(3 * I, bwd);
  dqk_ = arena.reserve(2 * I, bwd);
  dxc_ = arena.reserve(I, bwd);
  dxconv_ = arena.reserve(I, bwd);
  dxm_ = arena.reserve(I, bwd);
  dxm_b_ = arena.reserve(I, bwd);
  dxn_ = arena.reserve(D, bwd);
}

template <typename S>
cpu::LinearRecurrence<S> MlstmBlock<S>::recurrence(Pass p) {
  cpu::LinearRecurrence<S> r;
  r.B = p.B, r.T = p.T, r.H = H_, r.Dk = Dh_, r.Dv = Dh_, r.chunk = chunk_;
  r.q = {arena_(qkv_), 3 * I_, Dh_};
  r.k = {arena_(ks_), I_, Dh_};
  r.v = {arena_(qkv_) + 2 * I_, 3 * I_, Dh_};
  r.a = arena_(a_);
  r.c = arena_(c_);
  r.floor = arena_(floor_);
  r.eps = S(kMlstmDivisorEps);
  r.y = {arena_(h_), I_, Dh_};
  r.boundary = arena_(boundary_);
  return r;
}

template <typename S>
void MlstmBlock<S>::forward(Pass p, const S* x, S* y) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), I = I_;
  S* xn = arena_(xn_);
  norm_.forward(ps_, arena_, p, x, xn);
  up_x_.forward(ps_, p, xn, arena_(xm_));
  up_z_.forward(ps_, p, xn, arena_(z_));
  conv_.forward(ps_, p, arena_(xm_), arena_(xconv_));
  ops::activation_fwd(ex, cpu::Activation::silu, arena_(xc_), arena_(xconv_), N * I);
  qk_proj_.forward(ps_, p, arena_(xc_), arena_(qk_));
  v_proj_.forward(ps_, p, arena_(xm_), arena_(v_));
  // The gates see [q, k, v]; the cell sees k / √d_h.
  S* qkv = arena_(qkv_);
  ops::copy_rows(ex, qkv, 3 * I, arena_(qk_), 2 * I, N, 2 * I);
  ops::copy_rows(ex, qkv + 2 * I, 3 * I, arena_(v_), I, N, I);
  ops::copy_rows(ex, arena_(ks_), I, qkv + I, 3 * I, N, I, 1.0 / std::sqrt(double(Dh_)));
  igate_.forward(ps_, p, qkv, arena_(ig_));
  fgate_.forward(ps_, p, qkv, arena_(fg_));
  ops::stabilized_gates_fwd(ex, forget_, p.B, p.T, H_, arena_(ig_), arena_(fg_), arena_(m_),
                            arena_(a_), arena_(c_), arena_(floor_));
  const auto r = recurrence(p);
  ops::linear_recurrence_fwd(ex, r, work_.get(ex, ops::linear_recurrence_fwd_work_size(ex, r)));
  head_norm_.forward(ps_, arena_, p, arena_(h_), arena_(hn_));
  // hstate = (HeadNorm(h) + skip ⊙ x_c) ⊙ SiLU(z)
  ops::skip_add_fwd(ex, arena_(hskip_), arena_(hn_), ps_.value(skip_), arena_(xc_), I, N, I,
                    int64_t(1));
  ops::silu_gate_fwd(ex, arena_(hstate_), arena_(hskip_), arena_(z_), N * I);
  down_.forward(ps_, p, arena_(hstate_), y, x);
}

template <typename S>
void MlstmBlock<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), I = I_, H = H_;
  down_.backward(ps_, p, arena_(hstate_), dy, arena_(dhstate_));
  ops::silu_gate_bwd(ex, arena_(dhskip_), arena_(dz_), arena_(dhstate_), arena_(hskip_),
                     arena_(z_), N * I);
  ops::skip_add_bwd(ex, arena_(dxc_), ps_.grad(skip_), arena_(dhskip_), ps_.value(skip_),
                    arena_(xc_), I, N, I, int64_t(1));
  head_norm_.backward(ps_, arena_, p, arena_(h_), arena_(dhskip_), arena_(dh_));

  // The recurrence adds its gradients: start from zero.
  for (Slot s : {dq_, dks_, dv_}) ops::fill_zero(ex, arena_(s), N * I);
  for (Slot s : {da_, dc_, dfloor_}) ops::fill_zero(ex, arena_(s), N * H);
  cpu::LinearRecurrenceGrads<S> g;
  g.dy = {arena_(dh_), I, Dh_};
  g.dq = {arena_(dq_), I, Dh_};
  g.dk = {arena_(dks_), I, Dh_};
  g.dv = {arena_(dv_), I, Dh_};
  g.da = arena_(da_);
  g.dc = arena_(dc_);
  g.dfloor = arena_(dfloor_);
  const auto r = recurrence(p);
  ops::linear_recurrence_bwd(ex, r, g, work_.get(ex, ops::linear_recurrence_work_size(ex, r)));
  ops::stabilized_gates_bwd(ex, forget_, p.B, p.T, H, arena_(ig_), arena_(fg_), arena_(m_),
                            arena_(a_), arena_(c_), arena_(floor_), arena_(da_), arena_(dc_),
                            arena_(dfloor_), arena_(dig_), arena_(dfg_));
  // Both gates read [q, k, v]; q and k also reach the cell (k scaled), v the cell directly.
  S* dqkv = arena_(dqkv_);
  S* dqk = arena_(dqk_);
  igate_.backward(ps_, p, arena_(qkv_), arena_(dig_), dqkv);
  fgate_.backward(ps_, p, arena_(qkv_), arena_(dfg_), dqkv, cpu::Into::add);
  ops::copy_rows(ex, dqk, 2 * I, dqkv, 3 * I, N, 2 * I);
  ops::axpy_rows(ex, dqk, 2 * I, arena_(dq_), I, N, I, 1.0);
  ops::axpy_rows(ex, dqk + I, 2 * I, arena_(dks_), I, N, I, 1.0 / std::sqrt(double(Dh_)));
  ops::axpy_rows(ex, arena_(dv_), I, dqkv + 2 * I, 3 * I, N, I, 1.0);  // v's whole gradient
  qk_proj_.backward(ps_, p, arena_(xc_), dqk, arena_(dxc_), cpu::Into::add);
  v_proj_.backward(ps_, p, arena_(xm_), arena_(dv_), arena_(dxm_));
  ops::activation_bwd(ex, cpu::Activation::silu, arena_(dxconv_), arena_(dxc_), arena_(xconv_),
                      N * I);
  conv_.backward(ps_, p, arena_(xm_), arena_(dxconv_), arena_(dxm_b_));
  ops::add_inplace(ex, arena_(dxm_), arena_(dxm_b_), N * I);
  up_x_.backward(ps_, p, arena_(xn_), arena_(dxm_), arena_(dxn_));
  up_z_.backward(ps_, p, arena_(xn_), arena_(dz_), arena_(dxn_), cpu::Into::add);
  norm_.backward(ps_, arena_, p, x, arena_(dxn_), dx, dy);
}

template <typename S>
std::string MlstmBlock<S>::find_non_finite(Pass p) const {
  const int64_t I = I_, H = H_;
  return first_non_finite<S>({{"input norm", arena_.host(xn_), D_},
                              {"up-projection x", arena_.host(xm_), I},
                              {"output gate branch z", arena_.host(z_), I},
                              {"conv output", arena_.host(xconv_), I},
                              {"q/k projection", arena_.host(qk_), 2 * I},
                              {"v projection", arena_.host(v_), I},
                              {"input gate pre-activation", arena_.host(ig_), H, 1},
                              {"forget gate pre-activation", arena_.host(fg_), H, 1},
                              {"stabilizer m", arena_.host(m_), H, 1},
                              {"stabilized forget gate", arena_.host(a_), H, 1},
                              {"stabilized input gate", arena_.host(c_), H, 1},
                              {"hidden state h", arena_.host(h_), I, Dh_},
                              {"head norm", arena_.host(hn_), I},
                              {"gated output", arena_.host(hstate_), I}},
                             p);
}

template <typename S>
void MlstmBlock<S>::probe(Pass p, const std::string& prefix, ProbeSink& sink) {
  const int64_t H = H_, Dh = Dh_, cells = p.tokens() * H;
  const std::string at = prefix + ".";
  const bool signed_f = forget_ == cpu::ForgetGate::signed_sigmoid;
  add_head_series(sink, p, H, at + "input_preact", arena_.host(ig_), ProbeKind::value,
                  "input gate pre-activation i~ (the input gate is exp(i~))");
  add_head_series(sink, p, H, at + "forget_preact", arena_.host(fg_), ProbeKind::value,
                  std::string("forget gate pre-activation f~; f = ") +
                      (forget_ == cpu::ForgetGate::exp ? "exp(f~)"
                                                       : signed_f ? "2 sigmoid(f~) - 1"
                                                                  : "sigmoid(f~)"));
  add_head_series(sink, p, H, at + "stabilizer", arena_.host(m_), ProbeKind::value,
                  "stabilizer m_t = max(log|f| + m_{t-1}, i~) (log scale)");
  add_head_series(sink, p, H, at + "input_gate", arena_.host(c_), ProbeKind::gate,
                  "stabilized input gate i' = exp(i~ - m_t), in (0, 1]");
  add_head_series(sink, p, H, at + "forget_gate", arena_.host(a_),
                  signed_f ? ProbeKind::eigenvalue : ProbeKind::gate,
                  "stabilized forget gate f' = sign(f) exp(log|f| + m_{t-1} - m_t): the memory's "
                  "transition eigenvalue");
  // The recurrence keeps C and n in the stabilized scale exp(-m_t); their norms are reported
  // there, and the unstabilized log norm beside them (log ||C_t|| = log ||C~_t|| + m_t).
  const auto r = recurrence(p);
  float* memory = sink.add(at + "memory_norm", head_axes(), {p.B, p.T, H}, ProbeKind::norm,
                           "Frobenius norm of the stabilized memory C~_t = exp(-m_t) C_t");
  float* normalizer = sink.add(at + "normalizer_norm", head_axes(), {p.B, p.T, H},
                               ProbeKind::norm, "L2 norm of the stabilized normalizer n~_t");
  float* nq = sink.add(at + "n_dot_q", head_axes(), {p.B, p.T, H}, ProbeKind::norm,
                       "|n~_t . q_t|, the output's divisor unless the floor exp(-m_t) is larger");
  const RecurrenceReadouts<S> read = probe_recurrence(p, r, true, false, work_);
  const std::vector<S>& memory_s = read.state_norm;
  const std::vector<S>& normalizer_s = read.normalizer_norm;
  const std::vector<S>& nq_s = read.n_dot_q;
  float* log_memory = sink.add(at + "memory_log_norm", head_axes(), {p.B, p.T, H},
                               ProbeKind::value, "log ||C_t||_F = log ||C~_t||_F + m_t (natural log)");
  float* floor_active =
      sink.add(at + "floor_active", head_axes(), {p.B, p.T, H}, ProbeKind::indicator,
               "1 where the floor exp(-m_t) exceeds |n~_t . q_t| and divides the output instead");
  const S* m = arena_.host(m_);
  const S* floor = arena_.host(floor_);
  for (int64_t i = 0; i < cells; ++i) {
    memory[i] = float(memory_s[size_t(i)]);
    normalizer[i] = float(normalizer_s[size_t(i)]);
    nq[i] = float(nq_s[size_t(i)]);
    log_memory[i] = float(std::log(memory_s[size_t(i)]) + m[i]);
    floor_active[i] = floor[i] > nq_s[size_t(i)] ? 1.0f : 0.0f;
  }
  // The SiLU(z) branch gates the cell's output per unit; reported as its mean over the head.
  float* gate = sink.add(at + "output_gate", head_axes(), {p.B, p.T, H}, ProbeKind::value,
                         "mean over the head's units of the output gate SiLU(z)");
  const S* z = arena_.host(z_);
  for (int64_t n = 0; n < p.tokens(); ++n)
    for (int64_t h = 0; h < H; ++h) {
      double sum = 0;
      for (int64_t u = 0; u < Dh; ++u) {
        const double v = double(z[n * I_ + h * Dh + u]);
        sum += v / (1.0 + std::exp(-v));
      }
      gate[n * H + h] = float(sum / double(Dh));
    }
}

template class MlstmBlock<float>;
template class MlstmBlock<double>;

}  // namespace statelab
