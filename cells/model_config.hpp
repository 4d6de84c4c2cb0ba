// What a model is made of: the block pattern, widths and per-cell options. Lives in cells/
// because the cells build themselves from it; lab/config.hpp embeds it in the run config.
#pragma once

#include <string>

namespace statelab {

struct SlstmConfig {
  std::string forget_gate = "sigmoid";  // "sigmoid" | "exp"
  int conv_kernel = 4;                  // causal conv feeding the i, f gates; 0 = none
};

struct ModelConfig {
  std::string blocks = "ss";    // one letter per block: l = LSTM, s = sLSTM
  int d_model = 64;             // >= 1
  int heads = 4;                // >= 1, divides d_model (sLSTM heads; LSTM blocks have one)
  double ffn_factor = 4.0 / 3;  // gated FFN width / d_model, >= 0 (0 = no FFN)
  SlstmConfig slstm;
};

}  // namespace statelab
