// Whole blocks and whole models against central finite differences in double: the LSTM and
// sLSTM blocks in every option, and a model of every stack kind from tokens to the masked loss.
// The linear-cell blocks have their own file (test_linear_blocks.cpp).
#include <gtest/gtest.h>

#include <cctype>

#include "cells/model.hpp"
#include "cells/recurrent_block.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;

void perturb(ParamStore<double>& ps, unsigned seed) {
  // Moves parameters off their initial constants (zero R, unit norm weights) so every path of
  // the backward carries signal.
  auto noise = random_vector(ps.size(), seed, 0.3);
  for (int64_t i = 0; i < ps.size(); ++i) ps.values()[i] += noise[size_t(i)];
}

void check_block(cpu::NonlinearCell cell, const ModelConfig& cfg, Pass p, const std::string& what) {
  ParamStore<double> ps;
  Arena<double> arena;
  RecurrentBlock<double> block(ps, arena, "b", cell, cfg, 2);
  ps.allocate();
  ps.initialize(1);
  perturb(ps, 2);
  arena.allocate(Exec{}, p.tokens(), p.tokens());
  auto x = random_vector(p.tokens() * cfg.d_model, 3);
  std::vector<double> y(x.size()), dx(x.size());
  const auto w = random_vector(int64_t(y.size()), 4);
  auto loss = [&] {
    block.forward(p, x.data(), y.data());
    return testing::dot(w, y.data());
  };
  loss();
  ps.zero_grads();
  block.backward(p, x.data(), w.data(), dx.data());
  std::vector<double> dparams(ps.grads(), ps.grads() + ps.size());
  expect_gradient_close(check_gradient(loss, x.data(), dx.data(), int64_t(x.size()), 96),
                        what + ": d input");
  expect_gradient_close(check_gradient(loss, ps.values(), dparams.data(), ps.size(), 256),
                        what + ": d parameters");
}

ModelConfig config(const std::string& blocks, int d, int heads, double ffn, const std::string& fg,
                   int conv) {
  ModelConfig c;
  c.blocks = blocks, c.d_model = d, c.heads = heads, c.ffn_factor = ffn;
  c.slstm.forget_gate = fg, c.slstm.conv_kernel = conv;
  return c;
}

TEST(BlockGradients, LstmBlockWithFfn) {
  check_block(cpu::NonlinearCell::lstm, config("l", 6, 1, 4.0 / 3, "sigmoid", 0), {2, 7}, "lstm");
}

TEST(BlockGradients, SlstmBlockWithConvSigmoidForgetAndFfn) {
  check_block(cpu::NonlinearCell::slstm, config("s", 6, 2, 4.0 / 3, "sigmoid", 4), {2, 7},
              "slstm sigmoid conv");
}

TEST(BlockGradients, SlstmBlockWithExpForgetNoConvNoFfn) {
  check_block(cpu::NonlinearCell::slstm, config("s", 6, 3, 0, "exp", 0), {2, 7},
              "slstm exp plain");
}

// One model per stack kind, from tokens to the masked loss (the final answer and one
// mid-sequence target): LSTM then sLSTM, each linear cell and the Transformer alone, xLSTM[1:1],
// and a stack of every cell.
class StackGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(StackGradients, ModelFromTokensToMaskedLossMatchesFiniteDifferences) {
  ModelConfig cfg;
  cfg.blocks = GetParam();
  cfg.d_model = 8, cfg.heads = 2, cfg.ffn_factor = 1.0, cfg.chunk_size = 4;
  cfg.slstm.forget_gate = "exp";  // the block tests cover the sigmoid gate
  cfg.mamba2.state_size = 4;
  const Pass p{2, 6};
  Model<double> model(cfg, 5, p.tokens(), p.tokens());
  model.params().initialize(21);
  perturb(model.params(), 22);
  std::vector<int32_t> tokens(size_t(p.tokens())), targets(size_t(p.tokens()), -1);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t((i * 3 + 1) % 5);
  for (int64_t b = 0; b < p.B; ++b) {
    targets[size_t(b * p.T + p.T - 1)] = int32_t((b + 1) % 5);
    targets[size_t(b * p.T + 2)] = int32_t((b + 3) % 5);
  }
  auto loss = [&] {
    model.forward(tokens.data(), p);
    const auto s = model.loss(targets.data(), false);
    return s.loss_sum / double(s.count);
  };
  model.forward(tokens.data(), p);
  model.params().zero_grads();
  model.loss(targets.data(), true);
  model.backward();
  auto& ps = model.params();
  std::vector<double> dparams(ps.grads(), ps.grads() + ps.size());
  // A step of 1e-6: six stacked cells curve the loss enough that the O(eps²) truncation error
  // of a 1e-5 step alone reaches the 1e-6 bar (measured: it shrinks 100× per 10× smaller step).
  expect_gradient_close(check_gradient(loss, ps.values(), dparams.data(), ps.size(), 400, 1e-6),
                        "model " + GetParam());
}

INSTANTIATE_TEST_SUITE_P(EveryStackKind, StackGradients,
                         ::testing::Values("ls", "m", "M", "g", "t", "ms", "lsmMgt"),
                         [](const auto& param_info) {
                           std::string name;
                           for (const char c : param_info.param)
                             name += std::isupper(c) ? std::string("Mamba") : std::string(1, c);
                           return name;
                         });

}  // namespace
}  // namespace statelab
