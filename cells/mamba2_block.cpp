// Mamba2Block: in/out projections, conv, the discretisation of dt and A, the SSD scan through
// the unified linear recurrence, the D skip and the gated RMSNorm.
#include "cells/mamba2_block.hpp"

#include <algorithm>
#include <cmath>

#include "cells/linear_cell.hpp"
#include "cells/non_finite.hpp"
#include "cells/probe_fill.hpp"
#include "kernels/ops.hpp"

namespace statelab {

template <typename S>
Mamba2Block<S>::Mamba2Block(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                            const ModelConfig& cfg, int n_blocks)
    : ps_(ps),
      arena_(arena),
      signed_(cfg.eigen_range == "pm1"),
      D_(cfg.d_model),
      I_(int64_t(cfg.mamba2.expand) * cfg.d_model),
      H_(cfg.heads),
      P_(I_ / H_),
      N_(cfg.mamba2.state_size),
      C_(I_ + 2 * N_),
      chunk_(cfg.chunk_size),
      norm_(ps, arena, name + ".norm", D_),
      in_z_(ps, name + ".in_z", D_, I_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      in_xbc_(ps, name + ".in_xbc", D_, C_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      in_dt_(ps, name + ".in_dt", D_, H_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      conv_(ps, name + ".cell.conv", C_, cfg.mamba2.conv_kernel),
      out_norm_(ps, arena, name + ".cell.out_norm", I_),
      out_(ps, name + ".out", I_, D_, false,
           init::normal(1.0 / std::sqrt(double(I_) * 2.0 * n_blocks))) {
  A_log_ = ps.add(name + ".cell.A_log", {H_}, a_log_init(1.0, 16.0), false);
  dt_bias_ = ps.add(name + ".cell.dt_bias", {H_}, dt_bias_init(), false);
  D_skip_ = ps.add(name + ".cell.D", {H_}, init::constant(1.0), false);
  const int64_t D = D_, I = I_, H = H_, C = C_;
  xn_ = arena.reserve(D);
  z_ = arena.reserve(I);
  xbc_raw_ = arena.reserve(C);
  xbc_conv_ = arena.reserve(C);
  xbc_ = arena.reserve(C);
  dt_raw_ = arena.reserve(H);
  dt_ = arena.reserve(H);
  decay_ = arena.reserve(H);
  a_ = arena.reserve(H);
  ys_ = arena.reserve(I);
  yd_ = arena.reserve(I);
  g_ = arena.reserve(I);
  gn_ = arena.reserve(I);
  boundary_ = arena.reserve(boundary_per_token(H, N_, P_, false, chunk_));
  const auto bwd = SlotUse::backward;
  dgn_ = arena.reserve(I, bwd);
  dg_ = arena.reserve(I, bwd);
  dyd_ = arena.reserve(I, bwd);
  dz_ = arena.reserve(I, bwd);
  dxbc_ = arena.reserve(C, bwd);
  dxbc_conv_ = arena.reserve(C, bwd);
  dxbc_raw_ = arena.reserve(C, bwd);
  da_ = arena.reserve(H, bwd);
  dc_ = arena.reserve(H, bwd);
  ddecay_ = arena.reserve(H, bwd);
  ddt_raw_ = arena.reserve(H, bwd);
  dxn_ = arena.reserve(D, bwd);
}

template <typename S>
cpu::LinearRecurrence<S> Mamba2Block<S>::recurrence(Pass p) {
  cpu::LinearRecurrence<S> r;
  r.B = p.B, r.T = p.T, r.H = H_, r.Dk = N_, r.Dv = P_, r.chunk = chunk_;
  S* xbc = arena_(xbc_);
  r.v = {xbc, C_, P_};
  r.k = {xbc + I_, C_, 0};
  r.q = {xbc + I_ + N_, C_, 0};
  r.a = arena_(a_);
  r.c = arena_(dt_);
  r.y = {arena_(ys_), I_, P_};
  r.boundary = arena_(boundary_);
  return r;
}

template <typename S>
void Mamba2Block<S>::forward(Pass p, const S* x, S* y) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), I = I_, H = H_, C = C_;
  S* xn = arena_(xn_);
  norm_.forward(ps_, arena_, p, x, xn);
  in_z_.forward(ps_, p, xn, arena_(z_));
  in_xbc_.forward(ps_, p, xn, arena_(xbc_raw_));
  in_dt_.forward(ps_, p, xn, arena_(dt_raw_));
  conv_.forward(ps_, p, arena_(xbc_raw_), arena_(xbc_conv_));
  ops::activation_fwd(ex, cpu::Activation::silu, arena_(xbc_), arena_(xbc_conv_), N * C);
  ops::selective_decay_fwd(ex, N, H, arena_(dt_raw_), ps_.value(A_log_), ps_.value(dt_bias_),
                           arena_(dt_), arena_(decay_));
  // pm1: the transition 2·exp(dt·A) − 1 (Grazzi et al.); the input term keeps dt.
  ops::affine(ex, arena_(a_), arena_(decay_), signed_ ? 2.0 : 1.0, signed_ ? -1.0 : 0.0, N * H);
  const auto r = recurrence(p);
  ops::linear_recurrence_fwd(ex, r, work_.get(ex, ops::linear_recurrence_fwd_work_size(ex, r)));
  // g = (y + D ⊙ x) ⊙ SiLU(z), D per head
  ops::skip_add_fwd(ex, arena_(yd_), arena_(ys_), ps_.value(D_skip_), arena_(xbc_), C, N, I, P_);
  ops::silu_gate_fwd(ex, arena_(g_), arena_(yd_), arena_(z_), N * I);
  out_norm_.forward(ps_, arena_, p, arena_(g_), arena_(gn_));
  out_.forward(ps_, p, arena_(gn_), y, x);
}

template <typename S>
void Mamba2Block<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), I = I_, H = H_, C = C_;
  out_.backward(ps_, p, arena_(gn_), dy, arena_(dgn_));
  out_norm_.backward(ps_, arena_, p, arena_(g_), arena_(dgn_), arena_(dg_));
  S* dyd = arena_(dyd_);
  S* dxbc = arena_(dxbc_);
  ops::silu_gate_bwd(ex, dyd, arena_(dz_), arena_(dg_), arena_(yd_), arena_(z_), N * I);
  // The x columns of dxbc get D ⊙ dyd here and the recurrence's dv next; B and C only the
  // recurrence's dk, dq.
  ops::fill_zero(ex, dxbc, N * C);
  ops::skip_add_bwd(ex, dxbc, ps_.grad(D_skip_), dyd, ps_.value(D_skip_), arena_(xbc_), C, N, I,
                    P_);
  for (Slot s : {da_, dc_}) ops::fill_zero(ex, arena_(s), N * H);
  cpu::LinearRecurrenceGrads<S> gr;
  gr.dy = {dyd, I, P_};
  gr.dv = {dxbc, C, P_};
  gr.dk = {dxbc + I, C, 0};
  gr.dq = {dxbc + I + N_, C, 0};
  gr.da = arena_(da_);
  gr.dc = arena_(dc_);
  const auto r = recurrence(p);
  ops::linear_recurrence_bwd(ex, r, gr, work_.get(ex, ops::linear_recurrence_work_size(ex, r)));
  // a = decay (or 2·decay − 1); c = dt
  ops::affine(ex, arena_(ddecay_), arena_(da_), signed_ ? 2.0 : 1.0, 0.0, N * H);
  ops::selective_decay_bwd(ex, N, H, arena_(dt_raw_), ps_.value(A_log_), ps_.value(dt_bias_),
                           arena_(dt_), arena_(decay_), arena_(ddecay_), arena_(dc_),
                           arena_(ddt_raw_), ps_.grad(A_log_), ps_.grad(dt_bias_));
  ops::activation_bwd(ex, cpu::Activation::silu, arena_(dxbc_conv_), dxbc, arena_(xbc_conv_),
                      N * C);
  conv_.backward(ps_, p, arena_(xbc_raw_), arena_(dxbc_conv_), arena_(dxbc_raw_));
  in_xbc_.backward(ps_, p, arena_(xn_), arena_(dxbc_raw_), arena_(dxn_));
  in_z_.backward(ps_, p, arena_(xn_), arena_(dz_), arena_(dxn_), cpu::Into::add);
  in_dt_.backward(ps_, p, arena_(xn_), arena_(ddt_raw_), arena_(dxn_), cpu::Into::add);
  norm_.backward(ps_, arena_, p, x, arena_(dxn_), dx, dy);
}

template <typename S>
std::string Mamba2Block<S>::find_non_finite(Pass p) const {
  const int64_t I = I_, H = H_;
  return first_non_finite<S>({{"input norm", arena_.host(xn_), D_},
                              {"gate branch z", arena_.host(z_), I},
                              {"x/B/C projection", arena_.host(xbc_raw_), C_},
                              {"conv output", arena_.host(xbc_conv_), C_},
                              {"dt pre-activation", arena_.host(dt_raw_), H, 1},
                              {"step size dt", arena_.host(dt_), H, 1},
                              {"transition a", arena_.host(a_), H, 1},
                              {"SSD output y", arena_.host(ys_), I, P_},
                              {"gated output", arena_.host(g_), I},
                              {"output norm", arena_.host(gn_), I}},
                             p);
}

template <typename S>
void Mamba2Block<S>::probe(Pass p, const std::string& prefix, ProbeSink& sink) {
  const int64_t H = H_;
  const std::string at = prefix + ".";
  add_head_series(sink, p, H, at + "dt", arena_.host(dt_), ProbeKind::value,
                  "step size dt_t = softplus(dt~ + dt_bias)");
  add_head_series(sink, p, H, at + "transition", arena_.host(a_), ProbeKind::eigenvalue,
                  signed_ ? "transition eigenvalue a_t = 2 exp(dt A) - 1, in (-1, 1)"
                          : "transition eigenvalue a_t = exp(dt A), in (0, 1)");
  const auto read = probe_recurrence(p, recurrence(p), false, false, work_);
  add_head_series(sink, p, H, at + "state_norm", read.state_norm.data(), ProbeKind::norm,
                  "Frobenius norm of the SSM state H_t (head dim x state size)");
}

template class Mamba2Block<float>;
template class Mamba2Block<double>;

}  // namespace statelab
