// Heatmaps of per-step signals (gate values, memory norms, eigenvalues: rows = heads or units,
// columns = time), their colour bar, and a strip of categorical labels aligned with them.
// Cells are averaged into pixel-sized blocks while drawing, so a 64 x 2048 grid costs at most one
// rectangle per pixel column per pixel row, and runs of equal colour merge into one rectangle;
// the price is that a feature narrower than a pixel is blended with its neighbours.
#pragma once

#include <cstdint>
#include <string>

#include "gui/widgets/colormap.hpp"

namespace statelab::widgets {

struct HeatmapData {
  const float* values = nullptr;  // [rows, cols] row-major: rows = heads or units, cols = time
  int rows = 0, cols = 0;
  std::string row_label = "head", col_label = "t";
};

// Draws the grid `height` pixels tall across the available width, with time ticks in a text row
// below it (so the item is height + one line tall). On hover a tooltip "<row_label> r,
// <col_label> c: value" with the raw cell value. Returns true while a cell is hovered and writes
// it to the out params, else (-1, -1). Missing data draws an empty frame of the same size.
bool heatmap(const char* id, const HeatmapData& data, const ColorScale& scale, float height,
             int* hovered_row = nullptr, int* hovered_col = nullptr);

// A vertical bar `width` wide including its tick labels (the gradient takes up to 16 px of it),
// with 3-5 ticks of the scale's range.
void color_bar(const char* id, const ColorScale& scale, float width, float height);

// A one-row strip of categorical(labels[t]) across the available width, positions placed exactly
// like the columns of a heatmap with n columns, so the two line up. When n exceeds the width a
// pixel column shows its first position's label. Hover shows "name t: value".
void label_track(const char* id, const char* name, const int32_t* labels, int n, float height);

}  // namespace statelab::widgets
