// A probe view rearranged for drawing, once per new view rather than per frame: each series of
// a block as a [row, time] grid (rows = heads, or head·unit for per-unit series) with its colour
// scale, per-head curves over time, and which window shows it (gates and gate-like signals in
// Gates; norms, stabilizers and transition eigenvalues in Memory).
#pragma once

#include <string>
#include <vector>

#include "gui/snapshot.hpp"
#include "gui/widgets/colormap.hpp"

namespace statelab::gui {

enum class Panel { gates, memory, none };
// Where a series of a block belongs, from its kind and name.
Panel panel_of(const ProbeSeries& s);

struct SeriesView {
  std::string name;  // without the "blocks.<l>." prefix
  std::string meaning;
  ProbeKind kind = ProbeKind::value;
  Panel panel = Panel::none;
  int layer = 0;
  int rows = 0, cols = 0;       // heads (or heads × units) by time
  std::string row_label;        // "head" or "head.unit" ("query" for an attention map)
  std::string col_label = "t";  // "key" for an attention map
  std::vector<float> grid;      // [rows][cols]
  std::vector<std::vector<double>> per_head;  // [head][t]: the mean over a head's units
  widgets::ColorScale scale;
};

// The block series of `view`, gates first (model-level series such as tokens and answers are
// left out: the view holds those as label tracks); an attention map becomes one query × key
// grid per head.
std::vector<SeriesView> layout_probe(const ProbeView& view);

}  // namespace statelab::gui
