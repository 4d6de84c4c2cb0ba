// Line plots drawn straight into ImGui's draw list: axes with nice ticks, series as polylines
// that break at NaN, optional bands, a shaded x range, dashed markers, a legend and a hover
// read-out. Series are decimated to each pixel column's lowest and highest point, so 100k points
// cost ~2 per column; the price is that x must be roughly ascending for the decimation to bite.
// The frame helpers (plot_frame, draw_axes, draw_legend) are shared with scatter.cpp.
#pragma once

#include <imgui.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gui/widgets/scale.hpp"

namespace statelab::widgets {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;
  uint32_t color = 0;  // IM_COL32 order; 0: pack(categorical(index in the series list))
  // An optional shaded band (e.g. +- std over seeds): both of x's size, or empty.
  std::vector<double> band_lo, band_hi;
};

struct PlotOptions {
  std::string x_label, y_label;
  bool log_y = false;
  bool has_shade = false;  // a shaded x range (the training lengths)
  double shade_lo = 0, shade_hi = 0;
  std::vector<double> markers_x;  // vertical dashed lines (e.g. the training length)
  bool fixed_y = false;           // else y fits the series and bands; x always fits the series
  double y_lo = 0, y_hi = 1;
  float height = 200;  // width: the available content width
  bool legend = true;
};

// Draws the plot; on hover a vertical cursor and a tooltip with x and each series' y at the
// point nearest in x. Points with non-finite x or y (or y <= 0 on a log axis) break the line.
// Returns true while hovered.
bool line_plot(const char* id, const std::vector<PlotSeries>& series, const PlotOptions& options);

// One reserved plot item: the whole rectangle, the data rectangle inside the axes, and the maps
// between them. Shared by the line plot and the scatter plot.
struct PlotFrame {
  ImVec2 min, max;            // the whole item, in screen pixels
  ImVec2 plot_min, plot_max;  // the data area inside the axes
  AxisMap x, y;
  Ticks x_ticks, y_ticks;
  const char* x_label = "";
  const char* y_label = "";
  bool hovered = false;
};

// Reserves (available width) x height with an InvisibleButton and lays out room for the y tick
// labels (left), the y label (above) and the x tick labels and label (below).
PlotFrame plot_frame(const char* id, float height, std::pair<double, double> x_range,
                     std::pair<double, double> y_range, bool log_y, const char* x_label,
                     const char* y_label);
// The data area's background, grid lines at the ticks, tick labels and axis labels.
void draw_axes(ImDrawList* dl, const PlotFrame& frame);

struct LegendEntry {
  std::string text;
  uint32_t color;
};
// A box of colour swatches and names in the data area's top-right corner.
void draw_legend(ImDrawList* dl, const PlotFrame& frame, const std::vector<LegendEntry>& entries);

}  // namespace statelab::widgets
