// MlstmBlock: wiring of the up/down projections, conv, q/k/v, the stabilizer scan and the
// unified linear recurrence.
#include "cells/mlstm_block.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cells/linear_cell.hpp"
#include "cells/non_finite.hpp"
#include "kernels/cpu/elementwise.hpp"

namespace statelab {

namespace {

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
  dig_ = arena.reserve(H, bwd);
  dfg_ = arena.reserve(H, bwd);
  dqkv_a_ = arena.reserve(3 * I, bwd);
  dqkv_b_ = arena.reserve(3 * I, bwd);
  dqk_ = arena.reserve(2 * I, bwd);
  dvt_ = arena.reserve(I, bwd);
  dxc_ = arena.reserve(I, bwd);
  dxc_b_ = arena.reserve(I, bwd);
  dxconv_ = arena.reserve(I, bwd);
  dxm_ = arena.reserve(I, bwd);
  dxm_b_ = arena.reserve(I, bwd);
  dxn_ = arena.reserve(D, bwd);
  dxn_b_ = arena.reserve(D, bwd);
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
  r.y = {arena_(h_), I_, Dh_};
  r.boundary = arena_(boundary_);
  return r;
}

template <typename S>
void MlstmBlock<S>::forward(Pass p, const S* x, S* y) {
  const int64_t N = p.tokens(), I = I_;
  S* xn = arena_(xn_);
  norm_.forward(ps_, arena_, p, x, xn);
  up_x_.forward(ps_, p, xn, arena_(xm_));
  up_z_.forward(ps_, p, xn, arena_(z_));
  conv_.forward(ps_, p, arena_(xm_), arena_(xconv_));
  cpu::activation_fwd(cpu::Activation::silu, arena_(xc_), arena_(xconv_), N * I);
  qk_proj_.forward(ps_, p, arena_(xc_), arena_(qk_));
  v_proj_.forward(ps_, p, arena_(xm_), arena_(v_));
  // The gates see [q, k, v]; the cell sees k / √d_h.
  S* qkv = arena_(qkv_);
  S* ks = arena_(ks_);
  const S k_scale = S(1.0 / std::sqrt(double(Dh_)));
  for (int64_t n = 0; n < N; ++n) {
    std::copy_n(arena_(qk_) + n * 2 * I, 2 * I, qkv + n * 3 * I);
    std::copy_n(arena_(v_) + n * I, I, qkv + n * 3 * I + 2 * I);
    for (int64_t i = 0; i < I; ++i) ks[n * I + i] = qkv[n * 3 * I + I + i] * k_scale;
  }
  igate_.forward(ps_, p, qkv, arena_(ig_));
  fgate_.forward(ps_, p, qkv, arena_(fg_));
  cpu::stabilized_gates_fwd(forget_, p.B, p.T, H_, arena_(ig_), arena_(fg_), arena_(m_), arena_(a_),
                            arena_(c_), arena_(floor_));
  cpu::linear_recurrence_fwd(recurrence(p));
  head_norm_.forward(ps_, arena_, p, arena_(h_), arena_(hn_));
  const S* skip = ps_.value(skip_);
  const S* xc = arena_(xc_);
  const S* z = arena_(z_);
  S* hskip = arena_(hskip_);
  S* hstate = arena_(hstate_);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t j = n * I + i;
      hskip[j] = arena_(hn_)[j] + skip[i] * xc[j];
      hstate[j] = hskip[j] * z[j] * S(sigmoid(double(z[j])));
    }
  down_.forward(ps_, p, hstate, y);
  cpu::add_inplace(y, x, N * D_);
}

template <typename S>
void MlstmBlock<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const int64_t N = p.tokens(), I = I_, H = H_;
  down_.backward(ps_, p, arena_(hstate_), dy, arena_(dhstate_));
  // hstate = hskip ⊙ SiLU(z); hskip = HeadNorm(h) + skip ⊙ x_c
  const S* dhstate = arena_(dhstate_);
  const S* z = arena_(z_);
  const S* hskip = arena_(hskip_);
  const S* xc = arena_(xc_);
  const S* skip = ps_.value(skip_);
  S* dskip = ps_.grad(skip_);
  S* dhskip = arena_(dhskip_);
  S* dz = arena_(dz_);
  S* dxc = arena_(dxc_);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t j = n * I + i;
      const double sz = sigmoid(double(z[j]));
      dhskip[j] = dhstate[j] * S(double(z[j]) * sz);
      dz[j] = dhstate[j] * hskip[j] * S(sz * (1 + double(z[j]) * (1 - sz)));
      dskip[i] += dhskip[j] * xc[j];
      dxc[j] = dhskip[j] * skip[i];
    }
  head_norm_.backward(ps_, arena_, p, arena_(h_), dhskip, arena_(dh_));

  // The recurrence adds its gradients: start from zero.
  for (Slot s : {dq_, dks_, dv_}) std::fill_n(arena_(s), N * I, S(0));
  for (Slot s : {da_, dc_}) std::fill_n(arena_(s), N * H, S(0));
  cpu::LinearRecurrenceGrads<S> g;
  g.dy = {arena_(dh_), I, Dh_};
  g.dq = {arena_(dq_), I, Dh_};
  g.dk = {arena_(dks_), I, Dh_};
  g.dv = {arena_(dv_), I, Dh_};
  g.da = arena_(da_);
  g.dc = arena_(dc_);
  cpu::linear_recurrence_bwd(recurrence(p), g, recurrence_work(work_, recurrence(p)));
  cpu::stabilized_gates_bwd(forget_, p.B, p.T, H, arena_(fg_), arena_(m_), arena_(a_), arena_(c_),
                            arena_(da_), arena_(dc_), arena_(dig_), arena_(dfg_));
  igate_.backward(ps_, p, arena_(qkv_), arena_(dig_), arena_(dqkv_a_));
  fgate_.backward(ps_, p, arena_(qkv_), arena_(dfg_), arena_(dqkv_b_));
  const S k_scale = S(1.0 / std::sqrt(double(Dh_)));
  const S* ga = arena_(dqkv_a_);
  const S* gb = arena_(dqkv_b_);
  S* dqk = arena_(dqk_);
  S* dvt = arena_(dvt_);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t j = n * I + i, r = n * 3 * I + i;
      dqk[n * 2 * I + i] = ga[r] + gb[r] + arena_(dq_)[j];
      dqk[n * 2 * I + I + i] = ga[r + I] + gb[r + I] + arena_(dks_)[j] * k_scale;
      dvt[j] = ga[r + 2 * I] + gb[r + 2 * I] + arena_(dv_)[j];
    }
  qk_proj_.backward(ps_, p, arena_(xc_), dqk, arena_(dxc_b_));
  cpu::add_inplace(dxc, arena_(dxc_b_), N * I);
  v_proj_.backward(ps_, p, arena_(xm_), dvt, arena_(dxm_));
  cpu::activation_bwd(cpu::Activation::silu, arena_(dxconv_), dxc, arena_(xconv_), N * I);
  conv_.backward(ps_, p, arena_(xm_), arena_(dxconv_), arena_(dxm_b_));
  cpu::add_inplace(arena_(dxm_), arena_(dxm_b_), N * I);
  up_x_.backward(ps_, p, arena_(xn_), arena_(dxm_), arena_(dxn_));
  up_z_.backward(ps_, p, arena_(xn_), dz, arena_(dxn_b_));
  cpu::add_inplace(arena_(dxn_), arena_(dxn_b_), N * D_);
  norm_.backward(ps_, arena_, p, x, arena_(dxn_), dx);
  cpu::add_inplace(dx, dy, N * D_);
}

template <typename S>
std::string MlstmBlock<S>::find_non_finite(Pass p) const {
  const int64_t I = I_, H = H_;
  return first_non_finite<S>({{"input norm", arena_(xn_), D_},
                              {"up-projection x", arena_(xm_), I},
                              {"output gate branch z", arena_(z_), I},
                              {"conv output", arena_(xconv_), I},
                              {"q/k projection", arena_(qk_), 2 * I},
                              {"v projection", arena_(v_), I},
                              {"input gate pre-activation", arena_(ig_), H, 1},
                              {"forget gate pre-activation", arena_(fg_), H, 1},
                              {"stabilizer m", arena_(m_), H, 1},
                              {"stabilized forget gate", arena_(a_), H, 1},
                              {"stabilized input gate", arena_(c_), H, 1},
                              {"hidden state h", arena_(h_), I, Dh_},
                              {"head norm", arena_(hn_), I},
                              {"gated output", arena_(hstate_), I}},
                             p);
}

template class MlstmBlock<float>;
template class MlstmBlock<double>;

}  // namespace statelab
