// GdnBlock: projections, short convs, L2 norms, the α/β gates, the gated delta rule through
// the unified linear recurrence, the gated output norm and the FFN.
#include "cells/gdn_block.hpp"

#include <algorithm>
#include <cmath>

#include "cells/linear_cell.hpp"
#include "cells/non_finite.hpp"
#include "cells/probe_fill.hpp"
#include "kernels/ops.hpp"

namespace statelab {

namespace {

constexpr double kL2Eps = 1e-6;  // fla's l2norm: x / sqrt(Σx² + 1e-6)

}  // namespace

template <typename S>
GdnBlock<S>::GdnBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                      const ModelConfig& cfg, int n_blocks)
    : ps_(ps),
      arena_(arena),
      signed_(cfg.eigen_range == "pm1"),
      D_(cfg.d_model),
      H_(cfg.heads),
      Dk_(cfg.d_model / cfg.heads),
      Dv_(int64_t(cfg.gdn.expand_v) * Dk_),
      Qd_(H_ * Dk_),
      Vd_(H_ * Dv_),
      chunk_(cfg.chunk_size),
      norm_(ps, arena, name + ".norm", D_),
      q_proj_(ps, name + ".cell.q_proj", D_, Qd_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      k_proj_(ps, name + ".cell.k_proj", D_, Qd_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      v_proj_(ps, name + ".cell.v_proj", D_, Vd_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      a_proj_(ps, name + ".cell.a_proj", D_, H_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      b_proj_(ps, name + ".cell.b_proj", D_, H_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      g_proj_(ps, name + ".cell.g_proj", D_, Vd_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      q_conv_(ps, name + ".cell.q_conv", Qd_, cfg.gdn.conv_kernel, false),
      k_conv_(ps, name + ".cell.k_conv", Qd_, cfg.gdn.conv_kernel, false),
      v_conv_(ps, name + ".cell.v_conv", Vd_, cfg.gdn.conv_kernel, false),
      out_norm_(ps, arena, name + ".cell.out_norm", Dv_, H_),
      o_proj_(ps, name + ".o_proj", Vd_, D_, false,
              init::normal(1.0 / std::sqrt(double(Vd_) * 2.0 * n_blocks))) {
  A_log_ = ps.add(name + ".cell.A_log", {H_}, a_log_init(0.0, 16.0), false);
  dt_bias_ = ps.add(name + ".cell.dt_bias", {H_}, dt_bias_init(), false);
  if (cfg.ffn_factor > 0) {
    ffn_norm_.emplace(ps, arena, name + ".ffn_norm", D_);
    ffn_.emplace(ps, arena, name + ".ffn", D_, ffn_width(cfg.ffn_factor, D_), cpu::Activation::silu,
                 1.0 / std::sqrt(2.0 * n_blocks));
  }
  const int64_t D = D_, H = H_, Q = Qd_, V = Vd_;
  xn_ = arena.reserve(D);
  for (Slot* s : {&qr_, &kr_, &qc_, &kc_, &qs_, &ks_, &qn_, &kn_, &qx_}) *s = arena.reserve(Q);
  for (Slot* s : {&vr_, &vc_, &vs_, &o_, &on_, &gr_, &gated_}) *s = arena.reserve(V);
  for (Slot* s : {&rq_, &rk_, &ar_, &br_, &dt_, &alpha_, &beta_}) *s = arena.reserve(H);
  boundary_ = arena.reserve(boundary_per_token(H, Dk_, Dv_, false, chunk_));
  if (ffn_) {
    y1_ = arena.reserve(D);
    xn2_ = arena.reserve(D);
  }
  const auto bwd = SlotUse::backward;
  for (Slot* s : {&dy1_, &dxn2_, &dxn_}) *s = arena.reserve(D, bwd);
  for (Slot* s : {&dgated_, &don_, &do_, &dgr_, &dv_, &dvc_, &dvr_}) *s = arena.reserve(V, bwd);
  for (Slot* s : {&dq_, &dk_, &dqn_, &dkn_, &dqs_, &dks_, &dqc_, &dkc_, &dqr_, &dkr_})
    *s = arena.reserve(Q, bwd);
  for (Slot* s : {&da_, &db_, &dc_, &dar_, &dbr_}) *s = arena.reserve(H, bwd);
}

template <typename S>
cpu::LinearRecurrence<S> GdnBlock<S>::recurrence(Pass p) {
  cpu::LinearRecurrence<S> r;
  r.B = p.B, r.T = p.T, r.H = H_, r.Dk = Dk_, r.Dv = Dv_, r.chunk = chunk_;
  r.q = {arena_(qx_), Qd_, Dk_};
  r.k = {arena_(kn_), Qd_, Dk_};
  r.v = {arena_(vs_), Vd_, Dv_};
  r.a = arena_(alpha_);
  r.b = arena_(beta_);
  r.c = arena_(beta_);
  r.y = {arena_(o_), Vd_, Dv_};
  r.boundary = arena_(boundary_);
  return r;
}

template <typename S>
void GdnBlock<S>::forward(Pass p, const S* x, S* y) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), H = H_, Q = Qd_, V = Vd_;
  const auto silu = cpu::Activation::silu;
  S* xn = arena_(xn_);
  norm_.forward(ps_, arena_, p, x, xn);
  q_proj_.forward(ps_, p, xn, arena_(qr_));
  k_proj_.forward(ps_, p, xn, arena_(kr_));
  v_proj_.forward(ps_, p, xn, arena_(vr_));
  q_conv_.forward(ps_, p, arena_(qr_), arena_(qc_));
  k_conv_.forward(ps_, p, arena_(kr_), arena_(kc_));
  v_conv_.forward(ps_, p, arena_(vr_), arena_(vc_));
  ops::activation_fwd(ex, silu, arena_(qs_), arena_(qc_), N * Q);
  ops::activation_fwd(ex, silu, arena_(ks_), arena_(kc_), N * Q);
  ops::activation_fwd(ex, silu, arena_(vs_), arena_(vc_), N * V);
  ops::l2norm_fwd(ex, arena_(qn_), arena_(rq_), arena_(qs_), N * H, Dk_, kL2Eps);
  ops::l2norm_fwd(ex, arena_(kn_), arena_(rk_), arena_(ks_), N * H, Dk_, kL2Eps);
  const double q_scale = 1.0 / std::sqrt(double(Dk_));
  ops::affine(ex, arena_(qx_), arena_(qn_), q_scale, 0.0, N * Q);
  a_proj_.forward(ps_, p, xn, arena_(ar_));
  b_proj_.forward(ps_, p, xn, arena_(br_));
  ops::selective_decay_fwd(ex, N, H, arena_(ar_), ps_.value(A_log_), ps_.value(dt_bias_),
                           arena_(dt_), arena_(alpha_));
  ops::scaled_sigmoid_fwd(ex, arena_(beta_), arena_(br_), signed_ ? 2.0 : 1.0, N * H);
  const auto r = recurrence(p);
  ops::linear_recurrence_fwd(ex, r, work_.get(ex, ops::linear_recurrence_fwd_work_size(ex, r)));
  out_norm_.forward(ps_, arena_, p, arena_(o_), arena_(on_));
  g_proj_.forward(ps_, p, xn, arena_(gr_));
  ops::silu_gate_fwd(ex, arena_(gated_), arena_(on_), arena_(gr_), N * V);
  S* y1 = ffn_ ? arena_(y1_) : y;
  o_proj_.forward(ps_, p, arena_(gated_), y1, x);
  if (ffn_) {
    ffn_norm_->forward(ps_, arena_, p, y1, arena_(xn2_));
    ffn_->forward(ps_, arena_, p, arena_(xn2_), y, y1);
  }
}

template <typename S>
void GdnBlock<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), H = H_, Q = Qd_, V = Vd_;
  const auto silu = cpu::Activation::silu;
  const S* dy1 = dy;
  if (ffn_) {
    ffn_->backward(ps_, arena_, p, arena_(xn2_), dy, arena_(dxn2_));
    ffn_norm_->backward(ps_, arena_, p, arena_(y1_), arena_(dxn2_), arena_(dy1_), dy);
    dy1 = arena_(dy1_);
  }
  o_proj_.backward(ps_, p, arena_(gated_), dy1, arena_(dgated_));
  ops::silu_gate_bwd(ex, arena_(don_), arena_(dgr_), arena_(dgated_), arena_(on_), arena_(gr_),
                     N * V);
  out_norm_.backward(ps_, arena_, p, arena_(o_), arena_(don_), arena_(do_));

  for (Slot s : {dq_, dk_}) ops::fill_zero(ex, arena_(s), N * Q);
  ops::fill_zero(ex, arena_(dv_), N * V);
  for (Slot s : {da_, db_, dc_}) ops::fill_zero(ex, arena_(s), N * H);
  cpu::LinearRecurrenceGrads<S> g;
  g.dy = {arena_(do_), V, Dv_};
  g.dq = {arena_(dq_), Q, Dk_};
  g.dk = {arena_(dk_), Q, Dk_};
  g.dv = {arena_(dv_), V, Dv_};
  g.da = arena_(da_);
  g.db = arena_(db_);
  g.dc = arena_(dc_);
  const auto r = recurrence(p);
  ops::linear_recurrence_bwd(ex, r, g, work_.get(ex, ops::linear_recurrence_work_size(ex, r)));

  ops::selective_decay_bwd(ex, N, H, arena_(ar_), ps_.value(A_log_), ps_.value(dt_bias_),
                           arena_(dt_), arena_(alpha_), arena_(da_), static_cast<const S*>(nullptr),
                           arena_(dar_), ps_.grad(A_log_), ps_.grad(dt_bias_));
  // β = s·σ(b̃) is both b and c of the recurrence.
  ops::scaled_sigmoid_bwd(ex, arena_(dbr_), arena_(db_), arena_(dc_), arena_(br_),
                          signed_ ? 2.0 : 1.0, N * H);
  ops::affine(ex, arena_(dqn_), arena_(dq_), 1.0 / std::sqrt(double(Dk_)), 0.0, N * Q);
  ops::l2norm_bwd(ex, arena_(dqs_), arena_(dqn_), arena_(qn_), arena_(rq_), N * H, Dk_);
  ops::l2norm_bwd(ex, arena_(dks_), arena_(dk_), arena_(kn_), arena_(rk_), N * H, Dk_);
  ops::activation_bwd(ex, silu, arena_(dqc_), arena_(dqs_), arena_(qc_), N * Q);
  ops::activation_bwd(ex, silu, arena_(dkc_), arena_(dks_), arena_(kc_), N * Q);
  ops::activation_bwd(ex, silu, arena_(dvc_), arena_(dv_), arena_(vc_), N * V);
  q_conv_.backward(ps_, p, arena_(qr_), arena_(dqc_), arena_(dqr_));
  k_conv_.backward(ps_, p, arena_(kr_), arena_(dkc_), arena_(dkr_));
  v_conv_.backward(ps_, p, arena_(vr_), arena_(dvc_), arena_(dvr_));

  const S* xn = arena_(xn_);
  S* dxn = arena_(dxn_);
  q_proj_.backward(ps_, p, xn, arena_(dqr_), dxn);
  k_proj_.backward(ps_, p, xn, arena_(dkr_), dxn, cpu::Into::add);
  v_proj_.backward(ps_, p, xn, arena_(dvr_), dxn, cpu::Into::add);
  g_proj_.backward(ps_, p, xn, arena_(dgr_), dxn, cpu::Into::add);
  a_proj_.backward(ps_, p, xn, arena_(dar_), dxn, cpu::Into::add);
  b_proj_.backward(ps_, p, xn, arena_(dbr_), dxn, cpu::Into::add);
  norm_.backward(ps_, arena_, p, x, dxn, dx, dy1);
}

template <typename S>
std::string GdnBlock<S>::find_non_finite(Pass p) const {
  const int64_t H = H_, Q = Qd_, V = Vd_;
  std::vector<Watched<S>> watched = {{"input norm", arena_.host(xn_), D_},
                                     {"q projection", arena_.host(qr_), Q},
                                     {"k projection", arena_.host(kr_), Q},
                                     {"v projection", arena_.host(vr_), V},
                                     {"normalised q", arena_.host(qn_), Q, Dk_},
                                     {"normalised k", arena_.host(kn_), Q, Dk_},
                                     {"decay gate pre-activation", arena_.host(ar_), H, 1},
                                     {"beta pre-activation", arena_.host(br_), H, 1},
                                     {"decay alpha", arena_.host(alpha_), H, 1},
                                     {"delta-rule output o", arena_.host(o_), V, Dv_},
                                     {"output norm", arena_.host(on_), V},
                                     {"output gate projection", arena_.host(gr_), V}};
  if (ffn_) {
    watched.push_back({"residual after the cell", arena_.host(y1_), D_});
    watched.push_back({"FFN input norm", arena_.host(xn2_), D_});
  }
  return first_non_finite(watched, p);
}

template <typename S>
void GdnBlock<S>::probe(Pass p, const std::string& prefix, ProbeSink& sink) {
  const int64_t H = H_, Dk = Dk_;
  const std::string at = prefix + ".";
  add_head_series(sink, p, H, at + "alpha", arena_.host(alpha_), ProbeKind::gate,
                  "decay alpha_t = exp(-exp(A_log) softplus(a~ + dt_bias)), in (0, 1)");
  add_head_series(sink, p, H, at + "beta", arena_.host(beta_), ProbeKind::value,
                  signed_ ? "write strength beta_t = 2 sigmoid(b~), in (0, 2)"
                          : "write strength beta_t = sigmoid(b~), in (0, 1)");
  // The transition alpha (I - beta k kᵀ) scales k by alpha (1 - beta |k|²) and keeps alpha on
  // the orthogonal complement; |k| = 1 up to the L2 normalisation's epsilon.
  const auto r = recurrence(p);
  float* eigen = sink.add(at + "eigenvalue", head_axes(), {p.B, p.T, H}, ProbeKind::eigenvalue,
                          "transition eigenvalue along k_t: alpha_t (1 - beta_t |k_t|^2)");
  const S *keys = arena_.host_of(r.k.data), *alpha = arena_.host_of(r.a),
          *beta = arena_.host_of(r.b);
  for (int64_t n = 0; n < p.tokens(); ++n)
    for (int64_t h = 0; h < H; ++h) {
      const S* k = keys + n * r.k.row + h * r.k.head;
      double kk = 0;
      for (int64_t i = 0; i < Dk; ++i) kk += double(k[i]) * double(k[i]);
      const int64_t i = n * H + h;
      eigen[i] = float(double(alpha[i]) * (1.0 - double(beta[i]) * kk));
    }
  const auto read = probe_recurrence(p, r, false, true, work_);
  add_head_series(sink, p, H, at + "state_norm", read.state_norm.data(), ProbeKind::norm,
                  "Frobenius norm of the fast-weight memory S_t");
  add_head_series(sink, p, H, at + "write_error", read.write_error.data(), ProbeKind::norm,
                  "||S_{t-1} k_t - v_t||: how far the memory's recall of k_t was from v_t "
                  "before the write");
}

template class GdnBlock<float>;
template class GdnBlock<double>;

}  // namespace statelab
