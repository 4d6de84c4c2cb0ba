// The block around a non-linear recurrent cell (LSTM or sLSTM), in the xLSTM paper's
// post-up-projection layout:
//   y1 = x + HeadwiseNorm(Cell(LN(x)))      the i, f gates optionally see SiLU(conv4(LN(x)))
//   y  = y1 + GatedFFN(LN(y1))              GELU gate, width ffn_factor·d (0 = no FFN)
// LSTM and sLSTM share the block so that a comparison between them changes only the cell.
// The cell equations live in kernels/cpu/nonlinear_recurrence (DESIGN §2-3).
#pragma once

#include <memory>
#include <optional>

#include "cells/block.hpp"
#include "cells/layers.hpp"
#include "cells/model_config.hpp"
#include "kernels/cpu/nonlinear_recurrence.hpp"

namespace statelab {

template <typename S>
class RecurrentBlock final : public Block<S> {
 public:
  RecurrentBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                 cpu::NonlinearCell cell, const ModelConfig& cfg, int n_blocks);
  std::string cell() const override;
  void forward(Pass p, const S* x, S* y) override;
  void backward(Pass p, const S* x, const S* dy, S* dx) override;
  std::string find_non_finite(Pass p) const override;
  void probe(Pass p, const std::string& prefix, ProbeSink& sink) override;

  // What the last forward computed inside the cell (for probes and tests).
  cpu::NonlinearRecurrence<S> recurrence(Pass p);

 private:
  using Slot = typename Arena<S>::Slot;
  ParamStore<S>& ps_;
  Arena<S>& arena_;
  cpu::NonlinearCell cell_;
  bool exp_forget_;
  int64_t D_, H_, Dh_;
  GroupLayerNorm<S> norm1_;
  std::optional<CausalConv<S>> conv_;
  Linear<S> gate_if_, gate_zo_;  // i, f from the (conv) path; z, o from LN(x)
  ParamId R_;
  GroupLayerNorm<S> head_norm_;
  std::optional<GroupLayerNorm<S>> norm2_;
  std::optional<GatedFfn<S>> ffn_;
  // forward
  Slot xn_, xc_, xif_, pre_, raw_, gates_, c_, n_, m_, h_, hn_, y1_, xn2_;
  // backward
  Slot dy1_, dxn2_, dh_, dpre_, dxif_, dxc_, dxn_, dxn_b_;
  Scratch<S> work_;  // the recurrence backward's work buffer
};

}  // namespace statelab
