// Where a computation runs: the CPU, or a CUDA device through its context. Every op of
// kernels/ops.hpp takes one and dispatches on it; a default Exec is the CPU, so code that
// never mentions a device (most tests) runs the reference path.
#pragma once

namespace statelab {

namespace cuda {
struct Context;
}

struct Exec {
  const cuda::Context* cuda = nullptr;  // null: the CPU
  bool on_cuda() const { return cuda != nullptr; }
};

}  // namespace statelab
