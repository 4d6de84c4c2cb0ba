// The device a command computes on: "auto" (the first CUDA device that answers, else the CPU),
// "cpu" or "cuda:N", with the matrix-product precision. Opening one creates the CUDA context
// the models and kernels of the run share; the handle keeps it alive.
#pragma once

#include <memory>
#include <string>

#include "kernels/exec.hpp"
#include "kernels/precision.hpp"

namespace statelab {

struct ComputeDevice {
  std::string spec;         // resolved: "cpu" or "cuda:N"
  std::string description;  // e.g. "cuda:0 (NVIDIA H100 80GB HBM3, 132 SMs, tf32)"
  Exec exec;                // what models and ops run on
  std::shared_ptr<void> owner;  // the CUDA context, when there is one
  bool on_cuda() const { return exec.on_cuda(); }
};

// Syntax only: "auto", "cpu" or "cuda:N" with N a small non-negative integer. Returns the rule
// broken, or an empty string.
std::string device_spec_error(const std::string& spec);

// Throws ConfigError naming `what` (e.g. "--device" or "presets/x.json: /device") when the spec
// is malformed, names a CUDA device this build or machine lacks (with the runtime's reason), or
// the device cannot be opened.
ComputeDevice open_device(const std::string& spec, Precision precision, const std::string& what);

}  // namespace statelab
