// The Gated DeltaNet block, as fla's GatedDeltaNet layer (DESIGN §2), pre-norm with a SwiGLU
// FFN after it:
//   q, k, v = SiLU(conv4(W RMSNorm(x)));  q, k L2-normalised per head, q scaled by 1/√d_k
//   β = σ(W_b x̂) ("pm1": 2σ);  α = exp(−exp(A_log)·softplus(W_a x̂ + dt_bias))
//   per head: S_t = α_t S_{t-1}(I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ;  o_t = S_t q_t
//   y1 = x + W_o (RMSNorm(o) ⊙ SiLU(W_g x̂));   y = y1 + SwiGLU(RMSNorm(y1))
// The scan is the unified linear recurrence with a = α, b = c = β. The eigenvalue along k_t
// is α_t(1 − β_t), in (0, 1) as published and in (−1, 1) with "pm1".
#pragma once

#include <optional>
#include <vector>

#include "cells/block.hpp"
#include "cells/layers.hpp"
#include "cells/model_config.hpp"
#include "kernels/cpu/linear_recurrence.hpp"

namespace statelab {

template <typename S>
class GdnBlock final : public Block<S> {
 public:
  GdnBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, const ModelConfig& cfg,
           int n_blocks);
  std::string cell() const override { return "gdn"; }
  void forward(Pass p, const S* x, S* y) override;
  void backward(Pass p, const S* x, const S* dy, S* dx) override;
  std::string find_non_finite(Pass p) const override;
  void probe(Pass p, const std::string& prefix, ProbeSink& sink) override;

  // What the last forward fed the recurrence kernel and got back (for probes and tests):
  // a = α, b = c = β.
  cpu::LinearRecurrence<S> recurrence(Pass p);
  bool signed_transition() const { return signed_; }
  int64_t heads() const { return H_; }
  int64_t key_dim() const { return Dk_; }
  int64_t value_dim() const { return Dv_; }

 private:
  using Slot = typename Arena<S>::Slot;
  ParamStore<S>& ps_;
  Arena<S>& arena_;
  bool signed_;
  int64_t D_, H_, Dk_, Dv_, Qd_, Vd_, chunk_;
  RmsNorm<S> norm_;
  Linear<S> q_proj_, k_proj_, v_proj_, a_proj_, b_proj_, g_proj_;
  CausalConv<S> q_conv_, k_conv_, v_conv_;
  ParamId A_log_, dt_bias_;
  RmsNorm<S> out_norm_;
  Linear<S> o_proj_;
  std::optional<RmsNorm<S>> ffn_norm_;
  std::optional<GatedFfn<S>> ffn_;
  Scratch<S> work_;  // the recurrence's scratch, forward's and backward's, sized on first use
  // forward
  Slot xn_, qr_, kr_, vr_, qc_, kc_, vc_, qs_, ks_, vs_, qn_, rq_, kn_, rk_, qx_, ar_, br_, dt_,
      alpha_, beta_, o_, on_, gr_, gated_, boundary_, y1_, xn2_;
  // backward
  Slot dy1_, dxn2_, dgated_, don_, do_, dgr_, dq_, dk_, dv_, da_, db_, dc_, dar_, dbr_, dqn_, dkn_,
      dqs_, dks_, dqc_, dkc_, dvc_, dqr_, dkr_, dvr_, dxn_;
};

}  // namespace statelab
