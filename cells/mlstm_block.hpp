// The mLSTM block of the xLSTM paper, pre-up-projection layout (DESIGN §2):
//   x_m, z = up(LN(x));  x_c = SiLU(conv4(x_m));  q, k = W x_c;  v = W x_m
//   ĩ, f̃ = W [q, k, v] + b  (one scalar each per head);  h = mLSTM(q, k/√d_h, v, ĩ, f̃)
//   y = x + down((HeadwiseNorm(h) + skip ⊙ x_c) ⊙ SiLU(z))
// The SiLU(z) branch is the cell's output gate. The mLSTM itself is the unified linear
// recurrence (kernels/cpu/linear_recurrence) fed by the stabilizer scan
// (kernels/cpu/stabilizer); q, k, v projections are dense (xLSTM uses 4-wide block-diagonal
// ones, a parameter saving that matters only for large models).
#pragma once

#include "cells/block.hpp"
#include "cells/layers.hpp"
#include "cells/model_config.hpp"
#include "kernels/cpu/linear_recurrence.hpp"
#include "kernels/cpu/stabilizer.hpp"

namespace statelab {

template <typename S>
class MlstmBlock final : public Block<S> {
 public:
  MlstmBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, const ModelConfig& cfg,
             int n_blocks);
  std::string cell() const override { return "mlstm"; }
  void forward(Pass p, const S* x, S* y) override;
  void backward(Pass p, const S* x, const S* dy, S* dx) override;
  std::string find_non_finite(Pass p) const override;
  void probe(Pass p, const std::string& prefix, ProbeSink& sink) override;

  // What the last forward fed the recurrence kernel and got back (for probes and tests).
  cpu::LinearRecurrence<S> recurrence(Pass p);
  const S* input_gate() { return arena_(ig_); }   // [B, T, H] ĩ
  const S* forget_gate() { return arena_(fg_); }  // [B, T, H] f̃
  const S* stabilizer() { return arena_(m_); }    // [B, T, H] m
  cpu::ForgetGate forget_kind() const { return forget_; }
  int64_t heads() const { return H_; }
  int64_t head_dim() const { return Dh_; }

 private:
  using Slot = typename Arena<S>::Slot;
  ParamStore<S>& ps_;
  Arena<S>& arena_;
  cpu::ForgetGate forget_;
  int64_t D_, I_, H_, Dh_, chunk_;
  GroupLayerNorm<S> norm_;
  Linear<S> up_x_, up_z_;
  CausalConv<S> conv_;
  Linear<S> qk_proj_, v_proj_, igate_, fgate_;
  GroupLayerNorm<S> head_norm_;
  ParamId skip_;
  Linear<S> down_;
  Scratch<S> work_;  // the recurrence's scratch, forward's and backward's, sized on first use
  // forward
  Slot xn_, xm_, z_, xconv_, xc_, qk_, v_, qkv_, ks_, ig_, fg_, m_, a_, c_, floor_, h_, boundary_,
      hn_, hskip_, hstate_;
  // backward
  Slot dhstate_, dhskip_, dz_, dh_, dq_, dks_, dv_, da_, dc_, dfloor_, dig_, dfg_, dqkv_,
      dqk_, dxc_, dxconv_, dxm_, dxm_b_, dxn_;
};

}  // namespace statelab
