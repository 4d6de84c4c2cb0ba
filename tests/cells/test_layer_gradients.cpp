// Every layer's backward against central finite differences in double: input gradients and
// every parameter gradient, for the loss L = Σ w ⊙ layer(x) with fixed random w.
#include <gtest/gtest.h>

#include <functional>

#include "cells/layers.hpp"
#include "kernels/cpu/loss.hpp"
#include "kernels/cpu/norm.hpp"
#include "tests/support/gradcheck.hpp"

namespace statelab {
namespace {

using testing::check_gradient;
using testing::expect_gradient_close;
using testing::random_vector;
using Fwd = std::function<void(const double* x, double* y)>;
using Bwd = std::function<void(const double* x, const double* dy, double* dx)>;

struct Harness {
  ParamStore<double> ps;
  Arena<double> arena;
  Pass pass{2, 5};
  void finish() {
    ps.allocate();
    ps.initialize(3);
    // Perturb so that initial constants (norm weights 1, biases 0) do not hide mistakes.
    auto noise = random_vector(ps.size(), 4, 0.3);
    for (int64_t i = 0; i < ps.size(); ++i) ps.values()[i] += noise[size_t(i)];
    arena.allocate(Exec{}, pass.tokens(), pass.tokens());
  }
  // Checks d/dx and d/dparams of Σ w ⊙ f(x); x has in_width values per token.
  void check(const std::string& what, int64_t in_width, int64_t out_width, const Fwd& fwd,
             const Bwd& bwd) {
    auto x = random_vector(pass.tokens() * in_width, 5);
    std::vector<double> y(size_t(pass.tokens() * out_width));
    const auto w = random_vector(int64_t(y.size()), 6);
    auto loss = [&] {
      fwd(x.data(), y.data());
      return testing::dot(w, y.data());
    };
    loss();
    ps.zero_grads();
    std::vector<double> dx(x.size());
    bwd(x.data(), w.data(), dx.data());
    std::vector<double> dparams(ps.grads(), ps.grads() + ps.size());
    if (in_width > 0)  // an embedding's input is token ids: no gradient
      expect_gradient_close(check_gradient(loss, x.data(), dx.data(), int64_t(x.size())),
                            what + ": d input");
    if (ps.size() > 0)
      expect_gradient_close(check_gradient(loss, ps.values(), dparams.data(), ps.size(), 128),
                            what + ": d parameters");
  }
};

TEST(LayerGradients, LinearWithBias) {
  Harness h;
  Linear<double> layer(h.ps, "lin", 4, 3, true, init::normal(0.5));
  h.finish();
  h.check("linear", 4, 3, [&](auto x, auto y) { layer.forward(h.ps, h.pass, x, y); },
          [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.pass, x, dy, dx); });
}

// Layers reading one input sum their input gradients in place: Into::add gives what dx held
// plus the gradient that Into::overwrite writes.
TEST(LayerGradients, LinearIntoAddSumsTheInputGradientIntoWhatDxHolds) {
  Harness h;
  Linear<double> layer(h.ps, "lin", 4, 3, true, init::normal(0.5));
  h.finish();
  const int64_t N = h.pass.tokens();
  const auto x = random_vector(N * 4, 7), dy = random_vector(N * 3, 8);
  const auto held = random_vector(N * 4, 9);
  std::vector<double> fresh(size_t(N * 4)), summed = held;
  layer.backward(h.ps, h.pass, x.data(), dy.data(), fresh.data());
  layer.backward(h.ps, h.pass, x.data(), dy.data(), summed.data(), cpu::Into::add);
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_NE(fresh[i], 0.0) << "dx[" << i << "]";
    EXPECT_NEAR(summed[i], held[i] + fresh[i], 1e-12) << "dx[" << i << "]";
  }
}

// y = x + x Wᵀ + b with the residual added in the product: its gradient is the projection's plus
// the identity's. The residual may also be y itself, holding x.
TEST(LayerGradients, LinearAddsAResidualInItsProductEvenWhenItIsTheOutput) {
  Harness h;
  Linear<double> layer(h.ps, "lin", 4, 4, true, init::normal(0.5));
  h.finish();
  h.check(
      "linear + residual", 4, 4, [&](auto x, auto y) { layer.forward(h.ps, h.pass, x, y, x); },
      [&](auto x, auto dy, auto dx) {
        layer.backward(h.ps, h.pass, x, dy, dx);
        for (int64_t i = 0; i < h.pass.tokens() * 4; ++i) dx[i] += dy[i];
      });
  const auto x = random_vector(h.pass.tokens() * 4, 7);
  std::vector<double> apart(x.size()), in_place = x;
  layer.forward(h.ps, h.pass, x.data(), apart.data(), x.data());
  layer.forward(h.ps, h.pass, x.data(), in_place.data(), in_place.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_DOUBLE_EQ(in_place[i], apart[i]) << "y[" << i << "]";
}

// y = x + norm(x): the norms' backward adds the residual path's gradient (skip) into dx.
TEST(LayerGradients, NormBackwardsAddTheResidualPathsGradientIntoDx) {
  Harness h;
  GroupLayerNorm<double> ln(h.ps, h.arena, "ln", 1, 6, true);
  RmsNorm<double> rms(h.ps, h.arena, "rms", 6);
  h.finish();
  const int64_t n = h.pass.tokens() * 6;
  auto check_with_skip = [&](const std::string& what, const auto& norm) {
    h.check(
        what, 6, 6,
        [&](auto x, auto y) {
          norm.forward(h.ps, h.arena, h.pass, x, y);
          for (int64_t i = 0; i < n; ++i) y[i] += x[i];
        },
        [&](auto x, auto dy, auto dx) { norm.backward(h.ps, h.arena, h.pass, x, dy, dx, dy); });
  };
  check_with_skip("x + layernorm(x)", ln);
  check_with_skip("x + rmsnorm(x)", rms);
}

TEST(LayerGradients, EmbeddingAccumulatesRowsOfRepeatedTokens) {
  Harness h;
  Embedding<double> layer(h.ps, "emb", 4, 3);
  h.finish();
  const std::vector<int32_t> tokens = {0, 1, 1, 3, 2, 1, 0, 0, 3, 3};
  h.check("embedding", 0, 3, [&](auto, auto y) { layer.forward(h.ps, h.pass, tokens.data(), y); },
          [&](auto, auto dy, auto) { layer.backward(h.ps, h.pass, tokens.data(), dy); });
}

TEST(LayerGradients, LayerNormWithBias) {
  Harness h;
  GroupLayerNorm<double> layer(h.ps, h.arena, "ln", 1, 6, true);
  h.finish();
  h.check("layernorm", 6, 6, [&](auto x, auto y) { layer.forward(h.ps, h.arena, h.pass, x, y); },
          [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.arena, h.pass, x, dy, dx); });
}

TEST(LayerGradients, HeadwiseGroupNormWithoutBias) {
  Harness h;
  GroupLayerNorm<double> layer(h.ps, h.arena, "gn", 3, 4, false);
  h.finish();
  h.check("groupnorm", 12, 12, [&](auto x, auto y) { layer.forward(h.ps, h.arena, h.pass, x, y); },
          [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.arena, h.pass, x, dy, dx); });
}

TEST(LayerGradients, RmsNorm) {
  Harness h;
  RmsNorm<double> layer(h.ps, h.arena, "rms", 5);
  h.finish();
  h.check("rmsnorm", 5, 5, [&](auto x, auto y) { layer.forward(h.ps, h.arena, h.pass, x, y); },
          [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.arena, h.pass, x, dy, dx); });
}

TEST(LayerGradients, PerHeadRmsNormSharesOneWeightVector) {
  Harness h;
  RmsNorm<double> layer(h.ps, h.arena, "rms", 4, 3);
  h.finish();
  EXPECT_EQ(h.ps.count(), 4);
  h.check(
      "per-head rmsnorm", 12, 12,
      [&](auto x, auto y) { layer.forward(h.ps, h.arena, h.pass, x, y); },
      [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.arena, h.pass, x, dy, dx); });
}

TEST(LayerGradients, L2NormOfEachHead) {
  Harness h;
  h.finish();
  std::vector<double> rnorm(size_t(h.pass.tokens() * 2)), y(size_t(h.pass.tokens() * 8));
  h.check(
      "l2norm", 8, 8,
      [&](auto x, auto out) {
        cpu::l2norm_fwd(out, rnorm.data(), x, h.pass.tokens() * 2, 4, 1e-6);
      },
      [&](auto x, auto dy, auto dx) {
        cpu::l2norm_fwd(y.data(), rnorm.data(), x, h.pass.tokens() * 2, 4, 1e-6);
        cpu::l2norm_bwd(dx, dy, y.data(), rnorm.data(), h.pass.tokens() * 2, 4);
      });
}

TEST(LayerGradients, CausalConvWithoutBias) {
  Harness h;
  CausalConv<double> layer(h.ps, "conv", 3, 4, false);
  h.finish();
  EXPECT_EQ(h.ps.count(), 12);
  h.check(
      "conv without bias", 3, 3, [&](auto x, auto y) { layer.forward(h.ps, h.pass, x, y); },
      [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.pass, x, dy, dx); });
}

TEST(LayerGradients, CausalConvIncludingSequencesShorterThanTheKernel) {
  for (int64_t T : {5, 2}) {
    Harness h;
    h.pass = {2, T};
    CausalConv<double> layer(h.ps, "conv", 3, 4);
    h.finish();
    h.check("conv T=" + std::to_string(T), 3, 3,
            [&](auto x, auto y) { layer.forward(h.ps, h.pass, x, y); },
            [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.pass, x, dy, dx); });
  }
}

TEST(LayerGradients, GatedFfnWithGeluAndSilu) {
  for (auto act : {cpu::Activation::gelu, cpu::Activation::silu}) {
    Harness h;
    GatedFfn<double> layer(h.ps, h.arena, "ffn", 4, 6, act, 0.5);
    h.finish();
    h.check("gated ffn", 4, 4, [&](auto x, auto y) { layer.forward(h.ps, h.arena, h.pass, x, y); },
            [&](auto x, auto dy, auto dx) { layer.backward(h.ps, h.arena, h.pass, x, dy, dx); });
  }
}

TEST(LayerGradients, EveryActivation) {
  for (auto act : {cpu::Activation::identity, cpu::Activation::silu, cpu::Activation::gelu,
                   cpu::Activation::tanh, cpu::Activation::sigmoid}) {
    Harness h;
    h.finish();
    h.check("activation " + std::to_string(int(act)), 3, 3,
            [&](auto x, auto y) { cpu::activation_fwd(act, y, x, h.pass.tokens() * 3); },
            [&](auto x, auto dy, auto dx) { cpu::activation_bwd(act, dx, dy, x, h.pass.tokens() * 3); });
  }
}

TEST(LayerGradients, CrossEntropyIgnoresUnmaskedRowsAndAveragesTheRest) {
  const int64_t N = 6, V = 4;
  auto logits = random_vector(N * V, 8, 2.0);
  const std::vector<int32_t> targets = {2, -1, 0, 3, -1, 1};
  std::vector<double> dlogits(size_t(N * V));
  const auto stats = cpu::cross_entropy(dlogits.data(), logits.data(), targets.data(), N, V);
  EXPECT_EQ(stats.count, 4);
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(dlogits[size_t(1 * V + v)], 0.0);
  auto loss = [&] {
    const auto s = cpu::cross_entropy<double>(nullptr, logits.data(), targets.data(), N, V);
    return s.loss_sum / double(s.count);
  };
  expect_gradient_close(check_gradient(loss, logits.data(), dlogits.data(), N * V),
                        "cross entropy");
}

}  // namespace
}  // namespace statelab
