// What a model is made of: the block pattern, widths and per-cell options. Lives in cells/
// because the cells build themselves from it; lab/config.hpp embeds it in the run config.
#pragma once

#include <string>

namespace statelab {

struct SlstmConfig {
  std::string forget_gate = "sigmoid";  // "sigmoid" | "exp"
  int conv_kernel = 4;                  // causal conv feeding the i, f gates; 0 = none
};

struct MlstmConfig {
  std::string forget_gate = "sigmoid";  // "sigmoid" | "exp" ("exp" has no signed variant)
  int conv_kernel = 4;                  // causal conv + SiLU feeding q, k (>= 1)
  int proj_factor = 2;                  // up-projection: inner width = proj_factor · d_model
};

struct Mamba2Config {
  int expand = 2;       // inner width = expand · d_model, split into `heads` heads
  int state_size = 16;  // N: columns of each head's state (B and C width)
  int conv_kernel = 4;  // causal depthwise conv + SiLU on x, B, C (>= 1)
};

struct GdnConfig {
  int expand_v = 2;     // value (and output gate) width per head = expand_v · d_model / heads
  int conv_kernel = 4;  // short causal conv + SiLU on q, k, v (>= 1)
};

struct TransformerConfig {
  std::string position = "rope";  // "rope" | "none" (NoPE)
  double rope_base = 10000;       // > 1
};

struct ModelConfig {
  // One letter per block (cells/catalog.cpp lists them), or xLSTM's shorthand "xlstm[a:b]".
  std::string blocks = "ss";
  int d_model = 64;             // >= 1
  int heads = 4;                // >= 1, divides d_model (LSTM blocks have one)
  double ffn_factor = 4.0 / 3;  // FFN width / d_model, >= 0 (0 = no FFN)
  // Transition eigenvalues of the linear cells (mLSTM, Mamba-2, Gated DeltaNet): "01" as
  // published, or "pm1" for the signed [-1, 1] variants (DESIGN §2).
  std::string eigen_range = "01";
  int chunk_size = 64;  // chunk length of the linear recurrence (>= 1)
  SlstmConfig slstm;
  MlstmConfig mlstm;
  Mamba2Config mamba2;
  GdnConfig gdn;
  TransformerConfig transformer;
};

}  // namespace statelab
