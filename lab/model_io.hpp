// Parameters to and from safetensors. model.safetensors holds every parameter under its stable
// dotted name (float32) with the resolved config in the metadata; checkpoints reuse the same
// mapping with a prefix per buffer (parameters, AdamW moments).
#pragma once

#include <string>
#include <vector>

#include "cells/model.hpp"
#include "lab/config.hpp"
#include "lab/safetensors.hpp"

namespace statelab {

// One tensor per parameter, named prefix + parameter name, viewing `buffer` (a flat buffer laid
// out like the ParamStore's values: values, grads or a moment).
std::vector<safetensors::TensorRef> parameter_refs(const ParamStore<float>& ps,
                                                   const float* buffer, const std::string& prefix);
// Fills `buffer` from the tensors prefix + name; IoError naming `source` and the tensor when one
// is missing or of another shape or dtype.
void load_parameters(const safetensors::Contents& contents, const ParamStore<float>& ps,
                     float* buffer, const std::string& prefix, const std::string& source);

// `step`: the training steps behind the parameters, kept in the metadata.
void save_model(Model<float>& model, const RunConfig& cfg, const std::string& path, int step);
// Loads every parameter; throws IoError naming the file and the tensor when one is missing,
// extra, of another shape or dtype, or the file is corrupt. Returns the step the file records
// (-1 for a file written before the step was kept).
int load_model(Model<float>& model, const std::string& path);

}  // namespace statelab
