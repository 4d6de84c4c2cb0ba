// Probe views laid out for the Gates and Memory windows.
#include "gui/probe_layout.hpp"

#include <algorithm>

namespace statelab::gui {

Panel panel_of(const ProbeSeries& s) {
  const std::string& n = s.name;
  auto has = [&](const char* part) { return n.find(part) != std::string::npos; };
  if (s.kind == ProbeKind::gate || has("gate") || has("preact") || has(".beta") || has(".dt") ||
      has("attention_entropy"))
    return Panel::gates;
  if (s.kind == ProbeKind::norm || s.kind == ProbeKind::eigenvalue ||
      s.kind == ProbeKind::indicator || has("stabilizer") || has("log_"))
    return Panel::memory;
  return Panel::none;
}

namespace {

SeriesView named_after(const ProbeSeries& s) {
  SeriesView v;
  const size_t dot = s.name.find('.', 7);
  v.layer = std::stoi(s.name.substr(7, dot - 7));
  v.name = s.name.substr(dot + 1);
  v.meaning = s.meaning;
  v.kind = s.kind;
  v.panel = panel_of(s);
  return v;
}

// An attention map [1, H, T, T] as one query × key grid per head, on the probabilities' fixed
// [0, 1] scale.
void add_attention_maps(const ProbeSeries& s, std::vector<SeriesView>& out) {
  const int heads = int(s.shape[1]), T = int(s.shape[2]);
  for (int h = 0; h < heads; ++h) {
    SeriesView v = named_after(s);
    v.name += " head " + std::to_string(h);
    v.panel = Panel::gates;
    v.rows = v.cols = T;
    v.row_label = "query";
    v.col_label = "key";
    v.grid.assign(s.values.begin() + int64_t(h) * T * T, s.values.begin() + int64_t(h + 1) * T * T);
    v.scale = widgets::fit_color_scale(v.grid.data(), int64_t(v.grid.size()), "gate");
    out.push_back(std::move(v));
  }
}

}  // namespace

std::vector<SeriesView> layout_probe(const ProbeView& view) {
  std::vector<SeriesView> out;
  for (const ProbeSeries& s : view.series) {
    if (s.name.rfind("blocks.", 0) != 0 || s.shape.size() < 3 || s.shape.size() > 4) continue;
    if (s.axes == std::vector<std::string>{"sample", "head", "query", "key"}) {
      add_attention_maps(s, out);
      continue;
    }
    if (s.axes[1] != "time") continue;
    SeriesView v = named_after(s);
    const int T = int(s.shape[1]), heads = int(s.shape[2]);
    const int units = s.shape.size() == 4 ? int(s.shape[3]) : 1;
    v.rows = heads * units;
    v.cols = T;
    v.row_label = units > 1 ? "head.unit" : "head";
    v.grid.resize(size_t(v.rows) * size_t(T));
    v.per_head.assign(size_t(heads), std::vector<double>(size_t(T), 0.0));
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < heads; ++h) {
        double sum = 0;
        for (int u = 0; u < units; ++u) {
          const float x = s.values[(size_t(t) * heads + size_t(h)) * units + size_t(u)];
          v.grid[size_t(h * units + u) * size_t(T) + size_t(t)] = x;
          sum += x;
        }
        v.per_head[size_t(h)][size_t(t)] = sum / units;
      }
    v.scale =
        widgets::fit_color_scale(v.grid.data(), int64_t(v.grid.size()), probe_kind_name(s.kind));
    out.push_back(std::move(v));
  }
  // Gates first, then the other gate-like signals (pre-activations, step sizes), each in the
  // order the block reported them.
  std::stable_sort(out.begin(), out.end(), [](const SeriesView& a, const SeriesView& b) {
    return (a.kind == ProbeKind::gate) > (b.kind == ProbeKind::gate);
  });
  return out;
}

}  // namespace statelab::gui
