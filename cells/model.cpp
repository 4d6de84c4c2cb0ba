// Model assembly from the block pattern, and the forward / loss / backward sequence.
#include "cells/model.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cells/gdn_block.hpp"
#include "cells/mamba2_block.hpp"
#include "cells/mlstm_block.hpp"
#include "cells/non_finite.hpp"
#include "cells/recurrent_block.hpp"
#include "cells/transformer_block.hpp"
#include "kernels/error.hpp"
#include "kernels/ops.hpp"

namespace statelab {

namespace {

template <typename S>
std::unique_ptr<Block<S>> make_block(char letter, ParamStore<S>& ps, Arena<S>& arena,
                                     const std::string& name, const ModelConfig& cfg,
                                     int n_blocks) {
  switch (letter) {
    case 'l':
      return std::make_unique<RecurrentBlock<S>>(ps, arena, name, cpu::NonlinearCell::lstm, cfg,
                                                 n_blocks);
    case 's':
      return std::make_unique<RecurrentBlock<S>>(ps, arena, name, cpu::NonlinearCell::slstm,
                                                 cfg, n_blocks);
    case 'm':
      return std::make_unique<MlstmBlock<S>>(ps, arena, name, cfg, n_blocks);
    case 'M':
      return std::make_unique<Mamba2Block<S>>(ps, arena, name, cfg, n_blocks);
    case 'g':
      return std::make_unique<GdnBlock<S>>(ps, arena, name, cfg, n_blocks);
    case 't':
      return std::make_unique<TransformerBlock<S>>(ps, arena, name, cfg, n_blocks);
  }
  throw ConfigError("model.blocks: unknown block letter '" + std::string(1, letter) + "'");
}

}  // namespace

template <typename S>
Model<S>::Model(const ModelConfig& cfg, int vocab, int64_t max_forward_tokens,
                int64_t max_backward_tokens, const Exec& ex)
    : cfg_(cfg),
      vocab_(vocab),
      exec_(ex),
      embed_(params_, "embedding", vocab, cfg.d_model),
      final_norm_(params_, arena_, "final_norm", 1, cfg.d_model, true),
      head_(params_, "head", cfg.d_model, vocab, false,
            init::normal(1.0 / std::sqrt(double(cfg.d_model)))) {
  if (cfg.blocks.empty()) throw ConfigError("model.blocks is empty");
  if (cfg.heads < 1 || cfg.d_model % cfg.heads != 0)
    throw ConfigError("model.heads = " + std::to_string(cfg.heads) +
                      " must be >= 1 and divide model.d_model = " + std::to_string(cfg.d_model));
  if (cfg.chunk_size < 1)
    throw ConfigError("model.chunk_size = " + std::to_string(cfg.chunk_size) + " must be >= 1");
  if (cfg.eigen_range != "01" && cfg.eigen_range != "pm1")
    throw ConfigError("model.eigen_range = \"" + cfg.eigen_range + "\" must be \"01\" or \"pm1\"");
  SL_CHECK(max_backward_tokens <= max_forward_tokens, "backward budget above forward budget");
  SL_CHECK((!exec_.on_cuda() || std::is_same_v<S, float>), "a CUDA model computes in float");
  const int n = int(cfg.blocks.size());
  for (int i = 0; i < n; ++i)
    blocks_.push_back(
        make_block<S>(cfg.blocks[size_t(i)], params_, arena_, "blocks." + std::to_string(i), cfg, n));
  const int64_t D = cfg.d_model;
  for (int i = 0; i <= n; ++i) stream_.push_back(arena_.reserve(D));
  normed_ = arena_.reserve(D);
  logits_ = arena_.reserve(vocab);
  dlogits_ = arena_.reserve(vocab, SlotUse::backward);
  dnormed_ = arena_.reserve(D, SlotUse::backward);
  grad_a_ = arena_.reserve(D, SlotUse::backward);
  grad_b_ = arena_.reserve(D, SlotUse::backward);
  params_.allocate(exec_, max_backward_tokens > 0);
  arena_.allocate(exec_, max_forward_tokens, max_backward_tokens);
  if (exec_.on_cuda()) {
    device_tokens_.allocate(exec_, max_forward_tokens);
    device_targets_.allocate(exec_, max_forward_tokens);
    device_totals_.allocate(exec_, 1);
  }
}

template <typename S>
Tensor<const S> Model<S>::forward(const int32_t* tokens, Pass p) {
  SL_CHECK(p.B >= 1 && p.T >= 1, "empty pass");
  SL_CHECK(p.tokens() <= arena_.max_forward_tokens(),
           "pass of " + std::to_string(p.tokens()) + " tokens exceeds the arena's " +
               std::to_string(arena_.max_forward_tokens()));
  for (int64_t i = 0; i < p.tokens(); ++i)
    SL_CHECK(tokens[i] >= 0 && tokens[i] < vocab_, "token id out of the vocabulary");
  if (!exec_.on_cuda()) return forward_on_device(tokens, p);
  device_tokens_.from_host(tokens, p.tokens());
  return forward_on_device(device_tokens_.data(), p);
}

template <typename S>
Tensor<const S> Model<S>::forward_on_device(const int32_t* tokens, Pass p) {
  p.ex = &exec_;
  tokens_ = tokens;
  pass_ = p;
  grad_ready_ = false;
  embed_.forward(params_, p, tokens, arena_(stream_[0]));
  for (size_t i = 0; i < blocks_.size(); ++i)
    blocks_[i]->forward(p, arena_(stream_[i]), arena_(stream_[i + 1]));
  final_norm_.forward(params_, arena_, p, arena_(stream_.back()), arena_(normed_));
  head_.forward(params_, p, arena_(normed_), arena_(logits_));
  return {arena_(logits_), {p.B, p.T, vocab_}, exec_.on_cuda() ? Device::cuda : Device::cpu};
}

template <typename S>
void Model<S>::prepare_loss(bool grad) {
  SL_CHECK(tokens_, "loss before forward");
  if (grad)
    SL_CHECK(pass_.tokens() <= arena_.max_backward_tokens(),
             "pass of " + std::to_string(pass_.tokens()) +
                 " tokens exceeds the backward budget " +
                 std::to_string(arena_.max_backward_tokens()));
  if (grad)
    SL_CHECK(pass_.saves_activations,
             "loss with gradients after an evaluation forward, which saved no activations");
  grad_ready_ = grad;
}

template <typename S>
cpu::LossStats Model<S>::loss(const int32_t* targets, bool grad) {
  prepare_loss(grad);
  S* dlogits = grad ? arena_(dlogits_) : nullptr;
  if (!exec_.on_cuda())
    return cpu::cross_entropy(dlogits, arena_(logits_), targets, pass_.tokens(), vocab_);
  device_targets_.from_host(targets, pass_.tokens());
  device_totals_.zero();
  ops::cross_entropy(exec_, dlogits, arena_(logits_), device_targets_.data(), pass_.tokens(),
                     vocab_, device_totals_.data());
  LossTotals t{};
  device_totals_.to_host(&t, 1);
  return {t.loss_sum, int64_t(t.count), int64_t(t.correct)};
}

template <typename S>
void Model<S>::loss_on_device(const int32_t* targets, bool grad, LossTotals* totals) {
  prepare_loss(grad);
  ops::cross_entropy(exec_, grad ? arena_(dlogits_) : static_cast<S*>(nullptr), arena_(logits_),
                     targets, pass_.tokens(), vocab_, totals);
}

template <typename S>
const S* Model<S>::host_logits() {
  SL_CHECK(tokens_, "logits before forward");
  if (!exec_.on_cuda()) return arena_(logits_);
  const int64_t n = pass_.tokens() * vocab_;
  logits_mirror_.resize(size_t(n));
  arena_.to_host(logits_, n, logits_mirror_.data());
  return logits_mirror_.data();
}

template <typename S>
void Model<S>::backward() {
  SL_CHECK(grad_ready_, "backward without loss(grad = true) after the last forward");
  const Pass p = pass_;
  head_.backward(params_, p, arena_(normed_), arena_(dlogits_), arena_(dnormed_));
  S* dy = arena_(grad_a_);
  S* dx = arena_(grad_b_);
  final_norm_.backward(params_, arena_, p, arena_(stream_.back()), arena_(dnormed_), dy);
  for (size_t i = blocks_.size(); i-- > 0;) {
    blocks_[i]->backward(p, arena_(stream_[i]), dy, dx);
    std::swap(dx, dy);
  }
  embed_.backward(params_, p, tokens_, dy);
  grad_ready_ = false;
}

template <typename S>
std::string Model<S>::find_non_finite() {
  const Pass p = pass_;
  const int64_t D = cfg_.d_model;
  arena_.download();
  if (const auto at = earliest_non_finite(arena_.host(stream_[0]), p, D))
    return describe("the embedding output", *at);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const std::string layer = "block " + std::to_string(i) + " (" + blocks_[i]->cell() + ")";
    if (const std::string inside = blocks_[i]->find_non_finite(p); !inside.empty())
      return layer + ": " + inside;
    if (const auto at = earliest_non_finite(arena_.host(stream_[i + 1]), p, D))
      return describe(layer + ": the block output", *at);
  }
  if (const auto at = earliest_non_finite(arena_.host(normed_), p, D))
    return describe("the final norm", *at);
  if (const auto at = earliest_non_finite(arena_.host(logits_), p, vocab_))
    return describe("the logits", *at);
  return "";
}

template <typename S>
void Model<S>::probe(ProbeSink& sink) {
  SL_CHECK(tokens_, "probe before forward");
  SL_CHECK(pass_.saves_activations, "probe after an evaluation forward, which saved no gates");
  for (size_t i = 0; i < blocks_.size(); ++i)
    blocks_[i]->probe(pass_, "blocks." + std::to_string(i), sink);
}

template class Model<float>;
template class Model<double>;

}  // namespace statelab
