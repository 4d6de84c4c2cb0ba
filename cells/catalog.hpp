// The catalog of block kinds a model pattern (`model.blocks`) may use: letter -> cell.
#pragma once

#include <string>
#include <vector>

namespace statelab {

struct BlockKind {
  char letter;
  std::string cell;         // the cell's name in configs and reports
  std::string description;  // one line
};

const std::vector<BlockKind>& block_kinds();
// The cell name a pattern reports: the cell when all blocks agree, else the pattern itself.
std::string cell_name_of(const std::string& pattern);

}  // namespace statelab
