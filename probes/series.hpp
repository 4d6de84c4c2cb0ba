// Probe series: named arrays with axis names read out of a model after a forward pass.
// A recurrent block already keeps its gates and states for backward, so reading them costs
// no second implementation of the cell: the series are summaries of what the kernel computed.
#pragma once

#include <string>
#include <vector>

#include "cells/model.hpp"
#include "cells/recurrent_block.hpp"

namespace statelab {

struct Series {
  std::string name;                // e.g. "blocks.0.forget_gate"
  std::vector<std::string> axes;   // e.g. {"batch", "time", "head"}
  std::vector<int64_t> shape;
  std::vector<float> values;       // row-major over shape
  std::string meaning;             // one line for manifests and tooltips
};

// Per (batch, time, head) summaries of the cell inside a recurrent block after a forward over
// pass p: mean input gate, mean forget gate (the stabilized i', f' for sLSTM), mean stabilizer
// m (sLSTM), mean normalizer n (sLSTM), ‖c_t‖ and ‖h_t‖ over the head's units.
std::vector<Series> recurrent_block_series(RecurrentBlock<float>& block, Pass p,
                                           const std::string& prefix);

// Every recurrent block of a model, prefixed "blocks.<i>".
std::vector<Series> model_series(Model<float>& model, Pass p);

}  // namespace statelab
