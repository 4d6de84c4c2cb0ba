// An evaluation pass (Pass::evaluation) against a training pass of the same model: the same
// logits from a model of every cell, though its LSTM / sLSTM blocks keep h alone, and the model
// refuses what needs the activations it did not save (gradients, probes).
#include <gtest/gtest.h>

#include <vector>

#include "cells/model.hpp"
#include "kernels/error.hpp"

namespace statelab {
namespace {

TEST(EvaluationPass, GivesTheTrainingPassLogitsAndRefusesGradientsAndProbes) {
  ModelConfig cfg;
  cfg.blocks = "lsmMgt";
  cfg.d_model = 8, cfg.heads = 2, cfg.ffn_factor = 1.0, cfg.chunk_size = 4;
  cfg.mamba2.state_size = 4;
  const int64_t B = 3, T = 7, V = 5;
  Model<double> model(cfg, V, B * T, B * T);
  model.params().initialize(31);
  std::vector<int32_t> tokens(size_t(B * T)), targets(size_t(B * T));
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = int32_t((i * 3 + 1) % V);
    targets[i] = int32_t((i * 2 + 3) % V);
  }
  const auto logits = [&](Pass p) {
    const auto out = model.forward(tokens.data(), p);
    return std::vector<double>(out.data, out.data + B * T * V);
  };
  const auto trained = logits(Pass{B, T});
  const auto evaluated = logits(Pass::evaluation(B, T));
  // To 1e-12: the sLSTM's evaluation accumulates R·h into scratch, not into its saved
  // pre-activations, where Eigen may round the last bit differently.
  for (size_t i = 0; i < trained.size(); ++i)
    ASSERT_NEAR(trained[i], evaluated[i], 1e-12) << "logit " << i;

  EXPECT_NO_THROW(model.loss(targets.data(), false));
  EXPECT_THROW(model.loss(targets.data(), true), Error);
  ProbeSink sink;
  EXPECT_THROW(model.probe(sink), Error);
  // A training pass after it saves again.
  logits(Pass{B, T});
  EXPECT_NO_THROW(model.loss(targets.data(), true));
  EXPECT_NO_THROW(model.probe(sink));
}

}  // namespace
}  // namespace statelab
