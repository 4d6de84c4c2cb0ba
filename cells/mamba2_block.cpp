// Mamba2Block: in/out projections, conv, the discretisation of dt and A, the SSD scan through
// the unified linear recurrence, the D skip and the gated RMSNorm.
#include "cells/mamba2_block.hpp"

#include <algorithm>
#include <cmath>

#include "cells/linear_cell.hpp"
#include "cells/non_finite.hpp"
#include "kernels/cpu/elementwise.hpp"

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
  dxn_b_ = arena.reserve(D, bwd);
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
  const int64_t N = p.tokens(), I = I_, H = H_, C = C_;
  S* xn = arena_(xn_);
  norm_.forward(ps_, arena_, p, x, xn);
  in_z_.forward(ps_, p, xn, arena_(z_));
  in_xbc_.forward(ps_, p, xn, arena_(xbc_raw_));
  in_dt_.forward(ps_, p, xn, arena_(dt_raw_));
  conv_.forward(ps_, p, arena_(xbc_raw_), arena_(xbc_conv_));
  cpu::activation_fwd(cpu::Activation::silu, arena_(xbc_), arena_(xbc_conv_), N * C);
  selective_decay_fwd(N, H, arena_(dt_raw_), ps_.value(A_log_), ps_.value(dt_bias_), arena_(dt_),
                      arena_(decay_));
  for (int64_t i = 0; i < N * H; ++i)
    arena_(a_)[i] = signed_ ? 2 * arena_(decay_)[i] - 1 : arena_(decay_)[i];
  cpu::linear_recurrence_fwd(recurrence(p));
  const S* xbc = arena_(xbc_);
  const S* Dskip = ps_.value(D_skip_);
  const S* z = arena_(z_);
  S* yd = arena_(yd_);
  S* g = arena_(g_);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t j = n * I + i;
      yd[j] = arena_(ys_)[j] + Dskip[i / P_] * xbc[n * C + i];
      g[j] = yd[j] * z[j] * S(sigmoid(double(z[j])));
    }
  out_norm_.forward(ps_, arena_, p, g, arena_(gn_));
  out_.forward(ps_, p, arena_(gn_), y);
  cpu::add_inplace(y, x, N * D_);
}

template <typename S>
void Mamba2Block<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const int64_t N = p.tokens(), I = I_, H = H_, C = C_;
  out_.backward(ps_, p, arena_(gn_), dy, arena_(dgn_));
  out_norm_.backward(ps_, arena_, p, arena_(g_), arena_(dgn_), arena_(dg_));
  // g = yd ⊙ SiLU(z);  yd = ys + D ⊙ x
  const S* dg = arena_(dg_);
  const S* z = arena_(z_);
  const S* yd = arena_(yd_);
  const S* xbc = arena_(xbc_);
  const S* Dskip = ps_.value(D_skip_);
  S* dD = ps_.grad(D_skip_);
  S* dyd = arena_(dyd_);
  S* dz = arena_(dz_);
  S* dxbc = arena_(dxbc_);
  std::fill_n(dxbc, N * C, S(0));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t j = n * I + i;
      const double sz = sigmoid(double(z[j]));
      dyd[j] = dg[j] * S(double(z[j]) * sz);
      dz[j] = dg[j] * yd[j] * S(sz * (1 + double(z[j]) * (1 - sz)));
      dD[i / P_] += dyd[j] * xbc[n * C + i];
      dxbc[n * C + i] = dyd[j] * Dskip[i / P_];
    }
  for (Slot s : {da_, dc_}) std::fill_n(arena_(s), N * H, S(0));
  cpu::LinearRecurrenceGrads<S> gr;
  gr.dy = {dyd, I, P_};
  gr.dv = {dxbc, C, P_};
  gr.dk = {dxbc + I, C, 0};
  gr.dq = {dxbc + I + N_, C, 0};
  gr.da = arena_(da_);
  gr.dc = arena_(dc_);
  cpu::linear_recurrence_bwd(recurrence(p), gr, recurrence_work(work_, recurrence(p)));
  // a = decay (or 2·decay − 1); c = dt
  for (int64_t i = 0; i < N * H; ++i) arena_(ddecay_)[i] = arena_(da_)[i] * S(signed_ ? 2 : 1);
  selective_decay_bwd(N, H, arena_(dt_raw_), ps_.value(A_log_), ps_.value(dt_bias_), arena_(dt_),
                      arena_(decay_), arena_(ddecay_), arena_(dc_), arena_(ddt_raw_),
                      ps_.grad(A_log_), ps_.grad(dt_bias_));
  cpu::activation_bwd(cpu::Activation::silu, arena_(dxbc_conv_), dxbc, arena_(xbc_conv_), N * C);
  conv_.backward(ps_, p, arena_(xbc_raw_), arena_(dxbc_conv_), arena_(dxbc_raw_));
  in_xbc_.backward(ps_, p, arena_(xn_), arena_(dxbc_raw_), arena_(dxn_));
  in_z_.backward(ps_, p, arena_(xn_), dz, arena_(dxn_b_));
  cpu::add_inplace(arena_(dxn_), arena_(dxn_b_), N * D_);
  in_dt_.backward(ps_, p, arena_(xn_), arena_(ddt_raw_), arena_(dxn_b_));
  cpu::add_inplace(arena_(dxn_), arena_(dxn_b_), N * D_);
  norm_.backward(ps_, arena_, p, x, arena_(dxn_), dx);
  cpu::add_inplace(dx, dy, N * D_);
}

template <typename S>
std::string Mamba2Block<S>::find_non_finite(Pass p) const {
  const int64_t I = I_, H = H_;
  return first_non_finite<S>({{"input norm", arena_(xn_), D_},
                              {"gate branch z", arena_(z_), I},
                              {"x/B/C projection", arena_(xbc_raw_), C_},
                              {"conv output", arena_(xbc_conv_), C_},
                              {"dt pre-activation", arena_(dt_raw_), H, 1},
                              {"step size dt", arena_(dt_), H, 1},
                              {"transition a", arena_(a_), H, 1},
                              {"SSD output y", arena_(ys_), I, P_},
                              {"gated output", arena_(g_), I},
                              {"output norm", arena_(gn_), I}},
                             p);
}

template class Mamba2Block<float>;
template class Mamba2Block<double>;

}  // namespace statelab
