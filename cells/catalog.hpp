// The catalog of block kinds a model pattern (`model.blocks`) may use: letter -> cell, and the
// xLSTM paper's stack notation xlstm[a:b].
#pragma once

#include <string>
#include <vector>

namespace statelab {

struct BlockKind {
  char letter;
  std::string cell;         // the cell's name in configs and reports
  std::string description;  // one line
  bool linear;              // a linear recurrence: model.eigen_range applies to it
};

const std::vector<BlockKind>& block_kinds();
const BlockKind* find_block_kind(char letter);  // nullptr when unknown

// "xlstm[a:b]" (a mLSTM blocks per b sLSTM blocks) -> a 'm' followed by b 's'. Returns false
// when `text` does not start with "xlstm"; throws ConfigError holding the rule when it does
// but is malformed.
bool expand_xlstm_ratio(const std::string& text, std::string& pattern);

// The cell name a pattern reports: the cell when all blocks agree, "xlstm[a:b]" for a stack of
// that form, else the pattern itself.
std::string cell_name_of(const std::string& pattern);

}  // namespace statelab
