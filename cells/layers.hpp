// The layers blocks are built from, each an explicit forward/backward pair over the kernels.
// A layer owns its parameters (in the ParamStore) and the statistics it must keep for backward
// (in the Arena); its input and output buffers belong to the caller, which hands the forward
// input back to backward. Backward overwrites dx and accumulates parameter gradients.
#pragma once

#include <cmath>
#include <string>

#include "cells/arena.hpp"
#include "cells/params.hpp"
#include "kernels/cpu/dense.hpp"
#include "kernels/cpu/elementwise.hpp"

namespace statelab {

template <typename S>
class Linear {
 public:
  Linear(ParamStore<S>& ps, const std::string& name, int64_t in, int64_t out, bool bias,
         InitFn weight_init, InitFn bias_init = init::zeros());
  // [N, in] -> [N, out]; a residual [N, out] (may be y) is added in the product
  void forward(ParamStore<S>& ps, Pass p, const S* x, S* y, const S* residual = nullptr) const;
  // dx may be null; Into::add sums dx into what it holds (layers reading one input)
  void backward(ParamStore<S>& ps, Pass p, const S* x, const S* dy, S* dx,
                cpu::Into into = cpu::Into::overwrite) const;
  int64_t in() const { return in_; }
  int64_t out() const { return out_; }

 private:
  int64_t in_, out_;
  ParamId w_, b_ = -1;
};

template <typename S>
class Embedding {
 public:
  Embedding(ParamStore<S>& ps, const std::string& name, int64_t vocab, int64_t dim);
  void forward(ParamStore<S>& ps, Pass p, const int32_t* tokens, S* y) const;  // [N] -> [N, D]
  void backward(ParamStore<S>& ps, Pass p, const int32_t* tokens, const S* dy) const;
  int64_t vocab() const { return vocab_; }

 private:
  int64_t vocab_, dim_;
  ParamId e_;
};

// LayerNorm over groups of `group` units; groups = 1 is plain LayerNorm, groups = heads is the
// headwise norm that follows multi-head cells. Bias optional (the headwise norm has none).
template <typename S>
class GroupLayerNorm {
 public:
  GroupLayerNorm(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, int64_t groups,
                 int64_t group, bool bias);
  void forward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, S* y) const;
  // skip (may be null) is added to dx: the gradient that reaches x around the norm, along a
  // residual path, summed in the norm's own pass
  void backward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, const S* dy, S* dx,
                const S* skip = nullptr) const;

 private:
  int64_t groups_, group_;
  ParamId w_, b_ = -1;
  typename Arena<S>::Slot mean_, rstd_;
};

// RMSNorm over groups of `dim` units, one weight vector shared by the groups: groups = 1 is
// plain RMSNorm, groups = heads the per-head norm of Gated DeltaNet's output.
template <typename S>
class RmsNorm {
 public:
  RmsNorm(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, int64_t dim,
          int64_t groups = 1);
  void forward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, S* y) const;
  // skip as for GroupLayerNorm::backward
  void backward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, const S* dy, S* dx,
                const S* skip = nullptr) const;

 private:
  int64_t dim_, groups_;
  ParamId w_;
  typename Arena<S>::Slot rstd_;
};

// Causal depthwise conv over time, [B, T, C] -> [B, T, C], with or without bias.
template <typename S>
class CausalConv {
 public:
  CausalConv(ParamStore<S>& ps, const std::string& name, int64_t channels, int64_t kernel,
             bool bias = true);
  void forward(ParamStore<S>& ps, Pass p, const S* x, S* y) const;
  void backward(ParamStore<S>& ps, Pass p, const S* x, const S* dy, S* dx) const;

 private:
  int64_t channels_, kernel_;
  ParamId w_, b_ = -1;
};

// FFN width: ffn_factor·d rounded up to a multiple of 8 (xLSTM rounds to 64; 8 keeps small
// models small while staying SIMD-friendly).
inline int64_t ffn_width(double factor, int64_t d) {
  return int64_t(std::ceil(factor * double(d) / 8.0)) * 8;
}

// Gated FFN: down(act(gate) ⊙ value) with [gate | value] = up(x); no biases.
template <typename S>
class GatedFfn {
 public:
  GatedFfn(ParamStore<S>& ps, Arena<S>& arena, const std::string& name, int64_t dim,
           int64_t hidden, cpu::Activation act, double down_init_scale);
  // a residual (may be y) is added in the down projection
  void forward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, S* y,
               const S* residual = nullptr) const;
  void backward(ParamStore<S>& ps, Arena<S>& arena, Pass p, const S* x, const S* dy, S* dx) const;
  int64_t hidden() const { return hidden_; }

 private:
  int64_t hidden_;
  cpu::Activation act_;
  Linear<S> up_, down_;
  typename Arena<S>::Slot u_, a_, du_, da_;
};

}  // namespace statelab
