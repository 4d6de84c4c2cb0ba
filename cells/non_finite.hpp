// Finding where a forward pass first went non-finite: the earliest time step at which a
// [B, T, inner] activation holds a NaN or Inf, and the element there. Used to diagnose a
// diverged step layer by layer; never on the hot path.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

// One saved activation a block checks: [B, T, width], of which each head owns `per_head`
// consecutive units (0: the activation is not split into heads).
template <typename S>
struct Watched {
  std::string what;
  const S* data;
  int64_t width;
  int64_t per_head = 0;
};

// The first watched activation, in the given (forward) order, that holds a NaN or Inf, with
// where; empty when all are finite.
template <typename S>
std::string first_non_finite(const std::vector<Watched<S>>& watched, Pass p) {
  for (const auto& w : watched) {
    const auto at = earliest_non_finite(w.data, p, w.width);
    if (!at) continue;
    if (w.per_head == 0) return describe(w.what, *at);
    return w.what + " at batch row " + std::to_string(at->batch) + ", time step " +
           std::to_string(at->time) + ", head " + std::to_string(at->index / w.per_head) +
           (w.per_head > 1 ? ", unit " + std::to_string(at->index % w.per_head) : "");
  }
  return "";
}

}  // namespace statelab
