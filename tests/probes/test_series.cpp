// Probe series of a recurrent block against a recomputation from the cell's equations: the
// stabilized gates the series average must follow from the saved pre-activations and
// stabilizer, i' = exp(ĩ − m_t) and f' = exp(log σ(f̃) + m_{t−1} − m_t), and the norms from
// the saved states.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "probes/series.hpp"

namespace statelab {
namespace {

TEST(ProbeSeries, SlstmGateAndStateSummariesFollowFromTheCellEquations) {
  ModelConfig cfg;
  cfg.blocks = "ls";
  cfg.d_model = 8;
  cfg.heads = 2;
  const Pass p{3, 11};
  Model<float> model(cfg, 3, p.tokens(), p.tokens());
  model.params().initialize(5);
  std::vector<int32_t> tokens(size_t(p.tokens()));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(1 + (i * 5 % 7) % 2);
  model.forward(tokens.data(), p);

  std::map<std::string, Series> by_name;
  for (auto& s : model_series(model, p)) by_name[s.name] = s;
  ASSERT_EQ(by_name.count("blocks.0.input_gate"), 1u) << "the LSTM block reports gates";
  ASSERT_EQ(by_name.count("blocks.0.stabilizer"), 0u) << "an LSTM has no stabilizer";
  const Series& fg = by_name.at("blocks.1.forget_gate");
  const Series& ig = by_name.at("blocks.1.input_gate");
  const Series& cn = by_name.at("blocks.1.cell_norm");
  EXPECT_EQ(fg.shape, (std::vector<int64_t>{3, 11, 2}));
  EXPECT_EQ(fg.axes, (std::vector<std::string>{"batch", "time", "head"}));

  auto& block = dynamic_cast<RecurrentBlock<float>&>(model.block(1));
  const auto r = block.recurrence(p);
  const int64_t H = r.H, Dh = r.Dh;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < p.T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        double i_sum = 0, f_sum = 0, c_sq = 0;
        for (int64_t k = 0; k < Dh; ++k) {
          const int64_t s = ((b * p.T + t) * H + h) * Dh + k;
          const float* raw = r.raw + ((b * p.T + t) * H + h) * 4 * Dh;
          const double m = r.m[s];
          const double m_prev = t > 0 ? double(r.m[s - H * Dh]) : -INFINITY;
          const double log_f = -std::log1p(std::exp(-double(raw[Dh + k])));
          i_sum += std::exp(raw[k] - m);
          f_sum += t > 0 ? std::exp(log_f + m_prev - m) : 0.0;
          c_sq += double(r.c[s]) * r.c[s];
        }
        const size_t at = size_t((b * p.T + t) * H + h);
        EXPECT_NEAR(ig.values[at], i_sum / Dh, 1e-5);
        EXPECT_NEAR(fg.values[at], f_sum / Dh, 1e-5);
        EXPECT_NEAR(cn.values[at], std::sqrt(c_sq), 1e-5);
      }
}

}  // namespace
}  // namespace statelab
