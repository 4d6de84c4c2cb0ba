// A model: token embedding -> blocks (from the pattern, e.g. "ss") -> final LayerNorm -> linear
// head over the vocabulary. Owns its parameters and its activation arena on one device (the
// CPU, or a CUDA device in float); forward, loss and backward run without allocating. Same code
// in float (training) and double (gradient checks). Host-side entry points take host tokens and
// copy them over; the device-side ones serve a captured GPU training step.
#pragma once

#include <memory>
#include <vector>

#include "cells/block.hpp"
#include "cells/layers.hpp"
#include "cells/model_config.hpp"
#include "kernels/cpu/loss.hpp"
#include "kernels/exec.hpp"
#include "kernels/loss_totals.hpp"
#include "kernels/memory.hpp"

namespace statelab {

template <typename S>
class Model {
 public:
  // max_forward_tokens / max_backward_tokens bound B·T of any forward / backward pass; 0 backward
  // tokens make a forward-only model, without gradients or optimizer moments. ex picks the
  // device; a CUDA one must outlive the model.
  Model(const ModelConfig& cfg, int vocab, int64_t max_forward_tokens,
        int64_t max_backward_tokens, const Exec& ex = {});

  ParamStore<S>& params() { return params_; }
  const ParamStore<S>& params() const { return params_; }
  const ModelConfig& config() const { return cfg_; }
  int vocab() const { return vocab_; }
  int n_blocks() const { return int(blocks_.size()); }
  Block<S>& block(int i) { return *blocks_[size_t(i)]; }
  int64_t arena_bytes() const { return arena_.bytes(); }
  const Exec& exec() const { return exec_; }

  // tokens: [B, T] on the host, checked against the vocabulary; returns the logits on the
  // model's device (valid until the next forward).
  Tensor<const S> forward(const int32_t* tokens, Pass p);  // [B, T, vocab]
  // Cross-entropy of the last forward against host targets [B, T] (negative = ignored); with
  // `grad` it also prepares backward. Waits for the device.
  cpu::LossStats loss(const int32_t* targets, bool grad);
  // The logits of the last forward on the host (a copy on a GPU).
  const S* host_logits();

  // The same on memory of the model's device, for a captured step: tokens and targets already
  // there (and already checked), the sums added into *totals there.
  Tensor<const S> forward_on_device(const int32_t* tokens, Pass p);
  void loss_on_device(const int32_t* targets, bool grad, LossTotals* totals);
  // Accumulates parameter gradients of the mean loss of the last loss(grad = true).
  void backward();
  // Where the last forward first went non-finite, layer by layer in forward order: the layer,
  // tensor, batch row, time step and head; empty when every activation is finite.
  std::string find_non_finite();
  // Refreshes the host copy of the last forward's activations (one transfer on a GPU, nothing
  // on the CPU); probe() and host_residual() read it.
  void download_activations() { arena_.download(); }
  // What every block computed inside in the last forward, named "blocks.<i>.<quantity>" (see
  // Block::probe), after download_activations(); on a GPU what needs recomputing runs in CUDA
  // kernels. Leaves the forward's results untouched.
  void probe(ProbeSink& sink);
  // The shape of the last forward.
  Pass last_pass() const { return pass_; }
  // The residual stream of the last forward entering block i (i = n_blocks: the final norm's
  // input).
  Tensor<const S> residual(int i) {  // [B, T, D]
    return {arena_(stream_[size_t(i)]), {pass_.B, pass_.T, cfg_.d_model},
            exec_.on_cuda() ? Device::cuda : Device::cpu};
  }
  // The same on the host, after download_activations().
  const S* host_residual(int i) const { return arena_.host(stream_[size_t(i)]); }

 private:
  using Slot = typename Arena<S>::Slot;
  void prepare_loss(bool grad);  // checks the backward budget; arms backward when grad
  ModelConfig cfg_;
  int vocab_;
  Exec exec_;
  ParamStore<S> params_;
  Arena<S> arena_;
  Embedding<S> embed_;
  std::vector<std::unique_ptr<Block<S>>> blocks_;
  GroupLayerNorm<S> final_norm_;
  Linear<S> head_;
  std::vector<Slot> stream_;  // residual stream before each block and after the last
  Slot normed_, logits_, dlogits_, dnormed_, grad_a_, grad_b_;
  const int32_t* tokens_ = nullptr;  // of the last forward, on the model's device
  Pass pass_;
  // On a GPU: the host tokens and targets copied over, the loss sums, the logits copied back.
  Buffer<int32_t> device_tokens_, device_targets_;
  Buffer<LossTotals> device_totals_;
  std::vector<S> logits_mirror_;
  bool grad_ready_ = false;
};

}  // namespace statelab
