// Reading gate and state summaries out of recurrent blocks.
#include "probes/series.hpp"

#include <cmath>

namespace statelab {

std::vector<Series> recurrent_block_series(RecurrentBlock<float>& block, Pass p,
                                           const std::string& prefix) {
  const auto r = block.recurrence(p);
  const bool slstm = r.cell == cpu::NonlinearCell::slstm;
  const std::vector<std::string> axes = {"batch", "time", "head"};
  const std::vector<int64_t> shape = {r.B, r.T, r.H};
  const size_t cells = size_t(r.B * r.T * r.H);
  auto make = [&](const std::string& what, const std::string& meaning) {
    return Series{prefix + "." + what, axes, shape, std::vector<float>(cells, 0.0f), meaning};
  };
  std::vector<Series> out = {
      make("input_gate", slstm ? "mean stabilized input gate i' = exp(i~ - m)" : "mean sigmoid input gate"),
      make("forget_gate", slstm ? "mean stabilized forget gate f' = exp(log f + m_prev - m)" : "mean sigmoid forget gate"),
      make("cell_norm", "L2 norm of the cell state c_t over the head's units"),
      make("hidden_norm", "L2 norm of the output h_t over the head's units")};
  if (slstm) {
    out.push_back(make("stabilizer", "mean stabilizer m_t"));
    out.push_back(make("normalizer", "mean normalizer n_t"));
  }
  const int64_t Dh = r.Dh, G = 4 * Dh;
  for (size_t cell = 0; cell < cells; ++cell) {
    const float* g = r.gates + cell * G;
    const float* c = r.c + cell * Dh;
    const float* h = r.h + cell * Dh;
    double gi = 0, gf = 0, cn = 0, hn = 0, m = 0, n = 0;
    for (int64_t k = 0; k < Dh; ++k) {
      gi += g[k];
      gf += g[Dh + k];
      cn += double(c[k]) * c[k];
      hn += double(h[k]) * h[k];
      if (slstm) {
        m += r.m[cell * Dh + k];
        n += r.n[cell * Dh + k];
      }
    }
    out[0].values[cell] = float(gi / Dh);
    out[1].values[cell] = float(gf / Dh);
    out[2].values[cell] = float(std::sqrt(cn));
    out[3].values[cell] = float(std::sqrt(hn));
    if (slstm) {
      out[4].values[cell] = float(m / Dh);
      out[5].values[cell] = float(n / Dh);
    }
  }
  return out;
}

std::vector<Series> model_series(Model<float>& model, Pass p) {
  std::vector<Series> all;
  for (int i = 0; i < model.n_blocks(); ++i)
    if (auto* rb = dynamic_cast<RecurrentBlock<float>*>(&model.block(i))) {
      auto s = recurrent_block_series(*rb, p, "blocks." + std::to_string(i));
      all.insert(all.end(), s.begin(), s.end());
    }
  return all;
}

}  // namespace statelab
