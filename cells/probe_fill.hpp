// Small helpers the blocks share when they fill probe series from their saved activations.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cells/arena.hpp"
#include "cells/probe_sink.hpp"
#include "kernels/error.hpp"

namespace statelab {

inline const std::vector<std::string>& head_axes() {
  static const std::vector<std::string> axes = {"sample", "time", "head"};
  return axes;
}
inline const std::vector<std::string>& unit_axes() {
  static const std::vector<std::string> axes = {"sample", "time", "head", "unit"};
  return axes;
}

// Probes read the activations on the host and recompute with the CPU kernels.
inline void require_cpu_probe(const Pass& p, const std::string& block) {
  SL_CHECK(!p.exec().on_cuda(), block + ": probes run on a CPU model (copy the parameters over)");
}

// A [B, T, H] series copied from per-(token, head) scalars.
template <typename S>
void add_head_series(ProbeSink& sink, const Pass& p, int64_t H, const std::string& name,
                     const S* values, ProbeKind kind, const std::string& meaning) {
  float* out = sink.add(name, head_axes(), {p.B, p.T, H}, kind, meaning);
  for (int64_t i = 0; i < p.tokens() * H; ++i) out[i] = float(values[i]);
}

// A [B, T, H, Dh] series from per-unit values laid out with `row` elements per token, the
// head's Dh units starting every `head_stride` elements.
template <typename S>
void add_unit_series(ProbeSink& sink, const Pass& p, int64_t H, int64_t Dh, const std::string& name,
                     const S* values, int64_t row, int64_t head_stride, ProbeKind kind,
                     const std::string& meaning) {
  float* out = sink.add(name, unit_axes(), {p.B, p.T, H, Dh}, kind, meaning);
  for (int64_t n = 0; n < p.tokens(); ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t u = 0; u < Dh; ++u) *out++ = float(values[n * row + h * head_stride + u]);
}

// A [B, T, H] series of the L2 norm of each head's Dh values (same layout as above).
template <typename S>
void add_head_norms(ProbeSink& sink, const Pass& p, int64_t H, int64_t Dh, const std::string& name,
                    const S* values, int64_t row, int64_t head_stride, const std::string& meaning) {
  float* out = sink.add(name, head_axes(), {p.B, p.T, H}, ProbeKind::norm, meaning);
  for (int64_t n = 0; n < p.tokens(); ++n)
    for (int64_t h = 0; h < H; ++h) {
      double sum = 0;
      for (int64_t u = 0; u < Dh; ++u) {
        const double v = double(values[n * row + h * head_stride + u]);
        sum += v * v;
      }
      *out++ = float(std::sqrt(sum));
    }
}

}  // namespace statelab
