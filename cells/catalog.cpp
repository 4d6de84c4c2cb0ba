// Block kinds known to model patterns.
#include "cells/catalog.hpp"

namespace statelab {

const std::vector<BlockKind>& block_kinds() {
  static const std::vector<BlockKind> kinds = {
      {'l', "lstm", "LSTM: sigmoid gates, full recurrent matrix, pre-norm block with gated FFN"},
      {'s', "slstm", "sLSTM: exponential input gate, stabilizer and normalizer, block-diagonal R"},
  };
  return kinds;
}

std::string cell_name_of(const std::string& pattern) {
  for (const auto& k : block_kinds())
    if (!pattern.empty() && pattern.find_first_not_of(k.letter) == std::string::npos) return k.cell;
  return pattern;
}

}  // namespace statelab
