// TransformerBlock: norms, q/k/v/o projections, RoPE, the attention kernel and the FFN.
#include "cells/transformer_block.hpp"

#include <cmath>
#include <vector>

#include "cells/non_finite.hpp"
#include "cells/probe_fill.hpp"
#include "kernels/ops.hpp"
#include "kernels/error.hpp"

namespace statelab {

namespace {

// Checked before any parameter is declared, so a bad config leaves the ParamStore untouched.
int64_t checked_head_dim(const ModelConfig& cfg) {
  if (cfg.heads < 1 || cfg.d_model % cfg.heads != 0)
    throw ConfigError("model.heads = " + std::to_string(cfg.heads) +
                      " must be >= 1 and divide model.d_model = " + std::to_string(cfg.d_model));
  return cfg.d_model / cfg.heads;
}

bool uses_rope(const ModelConfig& cfg) {
  const auto& t = cfg.transformer;
  if (t.position != "rope" && t.position != "none")
    throw ConfigError("model.transformer.position = \"" + t.position +
                      "\" must be \"rope\" or \"none\"");
  if (t.position == "none") return false;
  if (checked_head_dim(cfg) % 2 != 0)
    throw ConfigError(
        "RoPE needs an even head dimension, but model.d_model = " + std::to_string(cfg.d_model) +
        " / model.heads = " + std::to_string(cfg.heads) + " gives " +
        std::to_string(checked_head_dim(cfg)) +
        " (change either, or set model.transformer.position to \"none\")");
  if (!(t.rope_base > 1))
    throw ConfigError("model.transformer.rope_base = " + std::to_string(t.rope_base) +
                      " must be > 1");
  return true;
}

}  // namespace

template <typename S>
TransformerBlock<S>::TransformerBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                                      const ModelConfig& cfg, int n_blocks)
    : ps_(ps),
      arena_(arena),
      D_(cfg.d_model),
      H_(cfg.heads),
      Dh_(checked_head_dim(cfg)),
      rope_(uses_rope(cfg)),
      rope_base_(cfg.transformer.rope_base),
      norm1_(ps, arena, name + ".norm", 1, D_, true),
      q_proj_(ps, name + ".attn.q_proj", D_, D_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      k_proj_(ps, name + ".attn.k_proj", D_, D_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      v_proj_(ps, name + ".attn.v_proj", D_, D_, false, init::normal(1.0 / std::sqrt(double(D_)))),
      // Scaled like GatedFfn's down projection: each of the 2·n_blocks residual branches adds
      // its share, so the stream stays near unit scale at initialisation.
      o_proj_(ps, name + ".attn.o_proj", D_, D_, false,
              init::normal(1.0 / std::sqrt(double(D_) * 2.0 * n_blocks))) {
  if (cfg.ffn_factor > 0) {
    norm2_.emplace(ps, arena, name + ".ffn_norm", 1, D_, true);
    ffn_.emplace(ps, arena, name + ".ffn", D_, ffn_width(cfg.ffn_factor, D_), cpu::Activation::silu,
                 1.0 / std::sqrt(2.0 * n_blocks));
  }
  const int64_t D = D_;
  for (Slot* s : {&xn_, &q_, &k_, &v_, &att_}) *s = arena.reserve(D);
  lse_ = arena.reserve(H_);
  if (ffn_) {
    y1_ = arena.reserve(D);
    xn2_ = arena.reserve(D);
    dy1_ = arena.reserve(D, SlotUse::backward);
    dxn2_ = arena.reserve(D, SlotUse::backward);
  }
  for (Slot* s : {&datt_, &dq_, &dk_, &dv_, &dxn_})
    *s = arena.reserve(D, SlotUse::backward);
}

template <typename S>
cpu::CausalAttention<S> TransformerBlock<S>::attention(Pass p) {
  cpu::CausalAttention<S> a;
  a.B = p.B, a.T = p.T, a.H = H_, a.Dh = Dh_;
  a.q = arena_(q_);
  a.k = arena_(k_);
  a.v = arena_(v_);
  a.o = arena_(att_);
  a.lse = arena_(lse_);
  return a;
}

template <typename S>
S* TransformerBlock<S>::attention_work(Pass p) {
  return work_.get(p.exec(), ops::causal_attention_work_size(p.exec(), p.B, p.T, H_));
}

template <typename S>
void TransformerBlock<S>::forward(Pass p, const S* x, S* y) {
  const Exec& ex = p.exec();
  S* xn = arena_(xn_);
  norm1_.forward(ps_, arena_, p, x, xn);
  q_proj_.forward(ps_, p, xn, arena_(q_));
  k_proj_.forward(ps_, p, xn, arena_(k_));
  v_proj_.forward(ps_, p, xn, arena_(v_));
  if (rope_) {
    ops::rope_fwd(ex, arena_(q_), arena_(q_), p.B, p.T, H_, Dh_, rope_base_);
    ops::rope_fwd(ex, arena_(k_), arena_(k_), p.B, p.T, H_, Dh_, rope_base_);
  }
  ops::causal_attention_fwd(ex, attention(p), attention_work(p));
  S* y1 = ffn_ ? arena_(y1_) : y;
  o_proj_.forward(ps_, p, arena_(att_), y1, x);
  if (ffn_) {
    norm2_->forward(ps_, arena_, p, y1, arena_(xn2_));
    ffn_->forward(ps_, arena_, p, arena_(xn2_), y, y1);
  }
}

template <typename S>
void TransformerBlock<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const Exec& ex = p.exec();
  const S* dy1 = dy;
  if (ffn_) {
    ffn_->backward(ps_, arena_, p, arena_(xn2_), dy, arena_(dxn2_));
    norm2_->backward(ps_, arena_, p, arena_(y1_), arena_(dxn2_), arena_(dy1_), dy);
    dy1 = arena_(dy1_);
  }
  o_proj_.backward(ps_, p, arena_(att_), dy1, arena_(datt_));
  ops::causal_attention_bwd(ex, attention(p), arena_(datt_), arena_(dq_), arena_(dk_), arena_(dv_),
                            attention_work(p));
  if (rope_) {
    ops::rope_bwd(ex, arena_(dq_), arena_(dq_), p.B, p.T, H_, Dh_, rope_base_);
    ops::rope_bwd(ex, arena_(dk_), arena_(dk_), p.B, p.T, H_, Dh_, rope_base_);
  }
  const S* xn = arena_(xn_);
  S* dxn = arena_(dxn_);
  q_proj_.backward(ps_, p, xn, arena_(dq_), dxn);
  k_proj_.backward(ps_, p, xn, arena_(dk_), dxn, cpu::Into::add);
  v_proj_.backward(ps_, p, xn, arena_(dv_), dxn, cpu::Into::add);
  norm1_.backward(ps_, arena_, p, x, dxn, dx, dy1);
}

template <typename S>
std::string TransformerBlock<S>::find_non_finite(Pass p) const {
  const int64_t D = D_;
  std::vector<Watched<S>> watched = {{"input norm", arena_.host(xn_), D},
                                     {rope_ ? "q after RoPE" : "q projection", arena_.host(q_), D, Dh_},
                                     {rope_ ? "k after RoPE" : "k projection", arena_.host(k_), D, Dh_},
                                     {"v projection", arena_.host(v_), D, Dh_},
                                     {"attention log-sum-exp", arena_.host(lse_), H_, 1},
                                     {"attention output", arena_.host(att_), D, Dh_}};
  if (ffn_) {
    watched.push_back({"residual after attention", arena_.host(y1_), D});
    watched.push_back({"FFN input norm", arena_.host(xn2_), D});
  }
  return first_non_finite(watched, p);
}

template <typename S>
void TransformerBlock<S>::probe(Pass p, const std::string& prefix, ProbeSink& sink) {
  const Exec& ex = p.exec();
  const int64_t H = H_, T = p.T;
  const bool with_map = T <= sink.attention_map_max_length();
  DeviceValues<S> entropy_d(ex, p.tokens() * H), map_d(ex, with_map ? p.B * H * T * T : 0);
  ops::causal_attention_probe(ex, attention(p), entropy_d.data(),
                              with_map ? map_d.data() : nullptr,
                              ex.on_cuda() ? nullptr : attention_work(p));
  const std::vector<S> entropy = entropy_d.host(), map = map_d.host();
  add_head_series(sink, p, H, prefix + ".attention_entropy", entropy.data(), ProbeKind::value,
                  "entropy (nats) of each query's attention over keys 0..t; log(t+1) = uniform");
  if (!with_map) return;
  float* out = sink.add(prefix + ".attention_map", {"sample", "head", "query", "key"},
                        {p.B, H, T, T}, ProbeKind::value,
                        "attention probability of query t on key s (0 for s > t)");
  for (size_t i = 0; i < map.size(); ++i) out[i] = float(map[i]);
}

template class TransformerBlock<float>;
template class TransformerBlock<double>;

}  // namespace statelab
