// What a block reports on a probe pass: named arrays per sample, time step, head (and unit),
// read out of what the last forward saved for backward, or recomputed by the kernels' own
// backward recomputation where a forward keeps only chunk-boundary states. A probe never writes
// to the model's activations, so a probed forward and an unprobed one give identical outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace statelab {

// How a series is summarised (probes/summary): saturation for gates, growth for norms, the
// sign for transition eigenvalues; the rest by mean and range. Labels are integers (token ids,
// latent states, answers), exported as int32.
enum class ProbeKind { gate, norm, eigenvalue, indicator, value, label };
const char* probe_kind_name(ProbeKind k);

struct ProbeSeries {
  std::string name;               // e.g. "blocks.0.forget_gate"
  std::vector<std::string> axes;  // e.g. {"sample", "time", "head"}; always "sample" first
  std::vector<int64_t> shape;     // same rank as axes
  std::vector<float> values;      // row-major over shape
  ProbeKind kind = ProbeKind::value;
  std::string meaning;  // one line: what the value is, in the cell's notation, with units
};

class ProbeSink {
 public:
  // Attention maps are T × T per head: reported only up to this length.
  explicit ProbeSink(int64_t attention_map_max_length = 128)
      : attention_map_max_length_(attention_map_max_length) {}

  // Adds a zero-filled series and returns its values for the block to fill.
  float* add(std::string name, std::vector<std::string> axes, std::vector<int64_t> shape,
             ProbeKind kind, std::string meaning) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    series_.push_back({std::move(name), std::move(axes), std::move(shape),
                       std::vector<float>(static_cast<size_t>(n), 0.0f), kind, std::move(meaning)});
    return series_.back().values.data();
  }
  int64_t attention_map_max_length() const { return attention_map_max_length_; }
  std::vector<ProbeSeries>& series() { return series_; }
  const ProbeSeries* find(const std::string& name) const {
    for (const auto& s : series_)
      if (s.name == name) return &s;
    return nullptr;
  }

 private:
  int64_t attention_map_max_length_;
  std::vector<ProbeSeries> series_;
};

inline const char* probe_kind_name(ProbeKind k) {
  switch (k) {
    case ProbeKind::gate:
      return "gate";
    case ProbeKind::norm:
      return "norm";
    case ProbeKind::eigenvalue:
      return "eigenvalue";
    case ProbeKind::indicator:
      return "indicator";
    case ProbeKind::value:
      return "value";
    case ProbeKind::label:
      return "label";
  }
  return "value";
}

}  // namespace statelab
