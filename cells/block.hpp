// The interface every block of a model implements: [B, T, D] in, [B, T, D] out, with an
// explicit backward (no general autograd). A block keeps what backward needs in the model's
// Arena; the caller keeps the block's input and hands it back to backward.
#pragma once

#include <string>

#include "cells/arena.hpp"
#include "cells/probe_sink.hpp"

namespace statelab {

template <typename S>
class Block {
 public:
  virtual ~Block() = default;
  virtual std::string cell() const = 0;
  virtual void forward(Pass p, const S* x, S* y) = 0;
  // dx is overwritten; parameter gradients accumulate in the ParamStore.
  virtual void backward(Pass p, const S* x, const S* dy, S* dx) = 0;
  // The first activation the last forward saved that is not finite, in forward order, with its
  // tensor, time step and head; empty when all are finite.
  virtual std::string find_non_finite(Pass p) const = 0;
  // Adds to `sink` what the last forward computed inside the block (gates, stabilizers, memory
  // norms per sample, time step and head), each series named prefix + "." + quantity. Reads the
  // block's activations and never changes them; on the CPU only.
  virtual void probe(Pass p, const std::string& prefix, ProbeSink& sink) = 0;
};

}  // namespace statelab
