// The widget gallery: one window that shows every plotting widget on synthetic data, the way
// imgui_demo.cpp shows ImGui's own. It is the visual check for the widgets and the headless
// render test's workload. The data is deterministic, so the window does not flicker.
#pragma once

#include <cstdint>
#include <vector>

#include "gui/widgets/line_plot.hpp"

namespace statelab::widgets {

struct GalleryData {
  std::vector<PlotSeries> loss;  // a noisy decaying loss (band over 3 seeds), a validation curve
  std::vector<PlotSeries> accuracy;  // accuracy vs sequence length for two models
  int gate_rows = 8, eigen_rows = 12, steps = 300;
  std::vector<float> gates;            // [gate_rows, steps] in (0, 1)
  std::vector<int32_t> states;         // [steps] the latent state, 0..2
  std::vector<float> eigenvalues;      // [eigen_rows, steps] in [-1, 1]
  std::vector<float> spiral;           // [n, 2] a noisy spiral
  std::vector<int32_t> spiral_labels;  // [n] 0..2 by arc length
};

GalleryData make_gallery_data(uint32_t seed = 7);

// Follows ImGui's rule: End() even when Begin() returns false. `open` may be null (no close
// button). The data is made once (make_gallery_data) and kept by the caller.
void draw_widget_gallery(bool* open, const GalleryData& data);

}  // namespace statelab::widgets
