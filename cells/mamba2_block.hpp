// The Mamba-2 block (SSD), as mamba_ssm's Mamba2 layer with one group (DESIGN §2):
//   z, xBC, dt̃ = in_proj(RMSNorm(x));  x, B, C = SiLU(conv4(xBC))
//   dt = softplus(dt̃ + dt_bias);  A = −exp(A_log);  a = exp(dt·A)  ("pm1": 2·exp(dt·A) − 1)
//   per head: H_t = a_t H_{t-1} + dt_t x_t B_tᵀ;  y_t = H_t C_t + D ⊙ x_t
//   out = x + out_proj(RMSNorm(y ⊙ SiLU(z)))
// The scan is the unified linear recurrence with q = C, k = B (shared by all heads), v = x,
// c = dt and no delta term or normalizer. A_log and dt_bias start as published.
#pragma once

#include <vector>

#include "cells/block.hpp"
#include "cells/layers.hpp"
#include "cells/model_config.hpp"
#include "kernels/cpu/linear_recurrence.hpp"

namespace statelab {

template <typename S>
class Mamba2Block final : public Block<S> {
 public:
  Mamba2Block(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, const ModelConfig& cfg,
              int n_blocks);
  std::string cell() const override { return "mamba2"; }
  void forward(Pass p, const S* x, S* y) override;
  void backward(Pass p, const S* x, const S* dy, S* dx) override;
  std::string find_non_finite(Pass p) const override;
  void probe(Pass p, const std::string& prefix, ProbeSink& sink) override;

  // What the last forward fed the recurrence kernel and got back (for probes and tests).
  cpu::LinearRecurrence<S> recurrence(Pass p);
  const S* dt() { return arena_(dt_); }  // [B, T, H] step sizes
  const S* A_log() const { return ps_.value(A_log_); }
  const S* D_skip() const { return ps_.value(D_skip_); }
  bool signed_transition() const { return signed_; }
  int64_t heads() const { return H_; }
  int64_t head_dim() const { return P_; }
  int64_t state_size() const { return N_; }

 private:
  using Slot = typename Arena<S>::Slot;
  ParamStore<S>& ps_;
  Arena<S>& arena_;
  bool signed_;
  int64_t D_, I_, H_, P_, N_, C_, chunk_;
  RmsNorm<S> norm_;
  Linear<S> in_z_, in_xbc_, in_dt_;
  CausalConv<S> conv_;
  ParamId A_log_, dt_bias_, D_skip_;
  RmsNorm<S> out_norm_;
  Linear<S> out_;
  Scratch<S> work_;  // the recurrence's scratch, forward's and backward's, sized on first use
  // forward
  Slot xn_, z_, xbc_raw_, xbc_conv_, xbc_, dt_raw_, dt_, decay_, a_, ys_, yd_, g_, gn_, boundary_;
  // backward
  Slot dgn_, dg_, dyd_, dz_, dxbc_, dxbc_conv_, dxbc_raw_, da_, dc_, ddecay_, ddt_raw_, dxn_;
};

}  // namespace statelab
