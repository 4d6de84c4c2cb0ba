// Finding where a forward pass first went non-finite: the earliest time step at which a
// [B, T, inner] activation holds a NaN or Inf, and the element there. Used to diagnose a
// diverged step layer by layer; never on the hot path.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "cells/arena.hpp"

namespace statelab {

struct NonFiniteAt {
  int64_t batch = 0, time = 0, index = 0;  // index within the [inner] row
};

template <typename S>
std::optional<NonFiniteAt> earliest_non_finite(const S* x, Pass p, int64_t inner) {
  std::optional<NonFiniteAt> best;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t < (best ? best->time : p.T); ++t)
      for (int64_t i = 0; i < inner; ++i)
        if (!std::isfinite(x[(b * p.T + t) * inner + i])) {
          best = NonFiniteAt{b, t, i};
          break;
        }
  return best;
}

// "<what> at batch row b, time step t, unit u" for a plain [B, T, D] activation.
inline std::string describe(const std::string& what, const NonFiniteAt& at) {
  return what + " at batch row " + std::to_string(at.batch) + ", time step " +
         std::to_string(at.time) + ", unit " + std::to_string(at.index);
}

}  // namespace statelab
