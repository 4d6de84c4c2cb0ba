// Small helpers the blocks share when they fill probe series from their saved activations. The
// activations are read from the arena's host copy (the model downloads it once after the
// forward; on the CPU it is the arena itself), and what has to be recomputed (a recurrence's
// state norms, attention probabilities) runs on the pass's device, the CUDA one in its kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cells/arena.hpp"
#include "cells/probe_sink.hpp"
#include "kernels/error.hpp"
#include "kernels/memory.hpp"
#include "kernels/ops.hpp"

namespace statelab {

inline const std::vector<std::string>& head_axes() {
  static const std::vector<std::string> axes = {"sample", "time", "head"};
  return axes;
}
inline const std::vector<std::string>& unit_axes() {
  static const std::vector<std::string> axes = {"sample", "time", "head", "unit"};
  return axes;
}

// Buffers of `count` values on the pass's device, copied to the host on request.
template <typename S>
struct DeviceValues {
  Buffer<S> buffer;
  DeviceValues(const Exec& ex, int64_t count) { buffer.allocate(ex, count); }
  S* data() { return buffer.data(); }
  std::vector<S> host() const {
    std::vector<S> out(static_cast<size_t>(buffer.size()));
    if (!out.empty()) buffer.to_host(out.data(), buffer.size());
    return out;
  }
};

// A linear recurrence's probe read-outs on the host, [B, T, H] each: the state norm always, the
// normalizer norm and |nᵀq| with `normalizer`, the delta rule's write error with `write_error`
// (the others stay empty). Computed on the pass's device; work serves the CPU's recompute.
template <typename S>
struct RecurrenceReadouts {
  std::vector<S> state_norm, normalizer_norm, n_dot_q, write_error;
};
template <typename S>
RecurrenceReadouts<S> probe_recurrence(const Pass& p, const cpu::LinearRecurrence<S>& r,
                                       bool normalizer, bool write_error, Scratch<S>& work) {
  const Exec& ex = p.exec();
  const int64_t n = r.B * r.T * r.H;
  DeviceValues<S> state(ex, n), norm(ex, normalizer ? n : 0), nq(ex, normalizer ? n : 0),
      error(ex, write_error ? n : 0);
  cpu::LinearRecurrenceProbe<S> probe;
  probe.state_norm = state.data();
  if (normalizer) probe.normalizer_norm = norm.data(), probe.n_dot_q = nq.data();
  if (write_error) probe.write_error = error.data();
  ops::linear_recurrence_probe(
      ex, r, probe, ex.on_cuda() ? nullptr : work.get(ex, cpu::linear_recurrence_work_size(r)));
  return {state.host(), norm.host(), nq.host(), error.host()};
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
