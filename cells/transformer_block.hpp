// The Transformer baseline block (DESIGN §2), pre-norm, as in LLaMA-style decoders:
//   q, k, v = W_q LN(x), W_k LN(x), W_v LN(x)        per head, Dh = d_model / heads; no biases
//   y1 = x + W_o Attn(RoPE(q), RoPE(k), v)            causal softmax attention, scale 1/√Dh
//   y  = y1 + SwiGLU(LN(y1))                          width ffn_factor·d (0 = no FFN)
// position "none" (NoPE) drops the rotation: then only the causal mask tells positions apart.
// The attention and RoPE arithmetic live in kernels/cpu/attention; this file is the wiring.
#pragma once

#include <optional>

#include "cells/block.hpp"
#include "cells/layers.hpp"
#include "cells/model_config.hpp"
#include "kernels/cpu/attention.hpp"

namespace statelab {

template <typename S>
class TransformerBlock final : public Block<S> {
 public:
  // Throws ConfigError for an unknown position encoding, or RoPE with an odd head dimension.
  TransformerBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                   const ModelConfig& cfg, int n_blocks);
  std::string cell() const override { return "transformer"; }
  void forward(Pass p, const S* x, S* y) override;
  void backward(Pass p, const S* x, const S* dy, S* dx) override;
  std::string find_non_finite(Pass p) const override;
  void probe(Pass p, const std::string& prefix, ProbeSink& sink) override;

  // What the last forward fed the attention kernel (q, k after RoPE) and got back.
  cpu::CausalAttention<S> attention(Pass p);
  bool rope() const { return rope_; }
  int64_t heads() const { return H_; }
  int64_t head_dim() const { return Dh_; }

 private:
  using Slot = typename Arena<S>::Slot;
  S* attention_work(Pass p);
  ParamStore<S>& ps_;
  Arena<S>& arena_;
  int64_t D_, H_, Dh_;
  bool rope_;
  double rope_base_;
  GroupLayerNorm<S> norm1_;
  Linear<S> q_proj_, k_proj_, v_proj_, o_proj_;
  std::optional<GroupLayerNorm<S>> norm2_;
  std::optional<GatedFfn<S>> ffn_;
  // forward (q and k are rotated in place: RoPE's backward needs only the gradient)
  Slot xn_, q_, k_, v_, lse_, att_, y1_, xn2_;
  // backward
  Slot dy1_, dxn2_, datt_, dq_, dk_, dv_, dxn_;
  Scratch<S> work_;  // the attention kernels' scratch, grown with the sequence length
};

}  // namespace statelab
