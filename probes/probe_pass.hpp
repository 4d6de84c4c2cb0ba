// One probe pass: a forward of a batch through a model on the CPU or a GPU, with everything the
// blocks report (cells/probe_sink) and what every model has: the input, the task's latent state
// and target, the model's answer and confidence per position, and the residual stream's norm
// per layer.
#pragma once

#include <cstdint>

#include "cells/model.hpp"
#include "cells/probe_sink.hpp"
#include "tasks/task.hpp"

namespace statelab {

// The batch's rows must all hold `batch.length` input tokens (no padding). The model's hidden
// states stay readable on the host through model.host_residual(i) until its next forward.
ProbeSink probe_batch(Model<float>& model, const Batch& batch,
                      int64_t attention_map_max_length = 128);

}  // namespace statelab
