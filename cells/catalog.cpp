// Block kinds known to model patterns, and the xLSTM ratio notation.
#include "cells/catalog.hpp"

#include <cctype>

#include "kernels/error.hpp"

namespace statelab {

namespace {
constexpr int kMaxRatioBlocks = 64;
}

const std::vector<BlockKind>& block_kinds() {
  static const std::vector<BlockKind> kinds = {
      {'l', "lstm", "LSTM: sigmoid gates, full recurrent matrix, pre-norm block with gated FFN",
       false},
      {'s', "slstm", "sLSTM: exponential input gate, stabilizer and normalizer, block-diagonal R",
       false},
      {'m', "mlstm", "mLSTM: matrix memory with exponential gating and normalizer (xLSTM)", true},
      {'M', "mamba2", "Mamba-2: selective state space (SSD), scalar decay per head", true},
      {'g', "gdn", "Gated DeltaNet: gated delta rule on L2-normalised keys", true},
      {'t', "transformer", "Transformer: causal multi-head attention (RoPE or NoPE) + SwiGLU",
       false},
  };
  return kinds;
}

const BlockKind* find_block_kind(char letter) {
  for (const auto& k : block_kinds())
    if (k.letter == letter) return &k;
  return nullptr;
}

namespace {
// Reads 1-3 decimal digits at text[pos], advancing pos; -1 when there are none or more.
int read_count(const std::string& text, size_t& pos) {
  const size_t start = pos;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos == start || pos - start > 3) return -1;
  return std::stoi(text.substr(start, pos - start));
}
}  // namespace

// Parsed by hand rather than with <regex>: GCC 12's regex headers trip -Wmaybe-uninitialized
// under the sanitizer build, and the grammar is four tokens.
bool expand_xlstm_ratio(const std::string& text, std::string& pattern) {
  const std::string head = "xlstm[";
  if (text.rfind("xlstm", 0) != 0) return false;
  const std::string rule = "xlstm[a:b] with a mLSTM and b sLSTM blocks, 1 <= a + b <= " +
                           std::to_string(kMaxRatioBlocks);
  if (text.rfind(head, 0) != 0) throw ConfigError(rule);
  size_t pos = head.size();
  const int a = read_count(text, pos);
  if (a < 0 || pos >= text.size() || text[pos] != ':') throw ConfigError(rule);
  ++pos;
  const int b = read_count(text, pos);
  if (b < 0 || pos + 1 != text.size() || text[pos] != ']') throw ConfigError(rule);
  if (a + b < 1 || a + b > kMaxRatioBlocks) throw ConfigError(rule);
  pattern = std::string(size_t(a), 'm') + std::string(size_t(b), 's');
  return true;
}

std::string cell_name_of(const std::string& pattern) {
  for (const auto& k : block_kinds())
    if (!pattern.empty() && pattern.find_first_not_of(k.letter) == std::string::npos) return k.cell;
  const size_t a = pattern.find_first_not_of('m');
  if (a != std::string::npos && a > 0 && pattern.find_first_not_of('s', a) == std::string::npos)
    return "xlstm[" + std::to_string(a) + ":" + std::to_string(pattern.size() - a) + "]";
  return pattern;
}

}  // namespace statelab
