// model.safetensors: every parameter under its stable dotted name (float32), with the resolved
// config in the metadata so a file can be checked against the run it is loaded into.
#pragma once

#include <string>

#include "cells/model.hpp"
#include "lab/config.hpp"

namespace statelab {

void save_model(const Model<float>& model, const RunConfig& cfg, const std::string& path);
// Loads every parameter; throws IoError naming the file and the tensor when one is missing,
// extra, of another shape or dtype, or the file is corrupt.
void load_model(Model<float>& model, const std::string& path);

}  // namespace statelab
