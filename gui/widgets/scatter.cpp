// The trajectory plot (see scatter.hpp), on the plot frame of line_plot.hpp.
// The legend's distinct labels are found by a scan capped at kMaxLegend entries, so a label
// array of arbitrary integers costs at most n x kMaxLegend comparisons and a small vector.
#include "gui/widgets/scatter.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gui/widgets/colormap.hpp"
#include "gui/widgets/line_plot.hpp"

namespace statelab::widgets {
namespace {

constexpr size_t kMaxLegend = 12;
constexpr float kPointRadius = 2.5f;

bool finite_point(const float* xy, int i) {
  return std::isfinite(xy[2 * i]) && std::isfinite(xy[2 * i + 1]);
}

ImVec2 to_screen(const PlotFrame& f, const float* xy, int i) {
  return ImVec2(f.x.to_px(xy[2 * i]), f.y.to_px(xy[2 * i + 1]));
}

uint32_t point_color(const int32_t* labels, int i) {
  return pack(categorical(labels ? labels[i] : 0));
}

std::vector<LegendEntry> label_legend(const int32_t* labels, int n) {
  std::vector<int32_t> distinct;
  for (int i = 0; labels != nullptr && i < n && distinct.size() < kMaxLegend; ++i) {
    if (std::find(distinct.begin(), distinct.end(), labels[i]) == distinct.end()) {
      distinct.push_back(labels[i]);
    }
  }
  std::sort(distinct.begin(), distinct.end());
  std::vector<LegendEntry> entries;
  for (int32_t k : distinct) {
    entries.push_back({k < 0 ? "unlabelled" : "state " + std::to_string(k), pack(categorical(k))});
  }
  return entries;
}

// The path buffer is stroked before any circle is drawn, since circles reuse it.
void draw_points(ImDrawList* dl, const PlotFrame& f, const float* xy, const int32_t* labels,
                 int n) {
  uint32_t thread = ImGui::GetColorU32(ImGuiCol_Text, 0.25f);
  for (int i = 0; i < n; ++i) {
    if (finite_point(xy, i)) {
      dl->PathLineTo(to_screen(f, xy, i));
    } else {
      dl->PathStroke(thread, 0, 1.0f);
    }
  }
  dl->PathStroke(thread, 0, 1.0f);
  for (int i = 0; i < n; ++i) {
    if (finite_point(xy, i))
      dl->AddCircleFilled(to_screen(f, xy, i), kPointRadius, point_color(labels, i), 8);
  }
}

void hover_readout(ImDrawList* dl, const PlotFrame& f, const float* xy, const int32_t* labels,
                   int n) {
  ImVec2 m = ImGui::GetIO().MousePos;
  int best = -1;
  float best_d2 = 8.0f * 8.0f;  // only points within 8 px answer
  for (int i = 0; i < n; ++i) {
    if (!finite_point(xy, i)) continue;
    ImVec2 p = to_screen(f, xy, i);
    float d2 = (p.x - m.x) * (p.x - m.x) + (p.y - m.y) * (p.y - m.y);
    if (d2 < best_d2) best = i, best_d2 = d2;
  }
  if (best < 0) return;
  dl->AddCircle(to_screen(f, xy, best), kPointRadius + 3, ImGui::GetColorU32(ImGuiCol_Text));
  ImGui::BeginTooltip();
  ImGui::Text("point %d", best);
  if (labels) ImGui::Text("label %d", labels[best]);
  ImGui::Text("%s %.4g, %s %.4g", f.x_label, xy[2 * best], f.y_label, xy[2 * best + 1]);
  ImGui::EndTooltip();
}

}  // namespace

void trajectory(const char* id, const float* xy, const int32_t* labels, int n, float height,
                const char* x_label, const char* y_label) {
  n = xy ? std::max(n, 0) : 0;
  const float* ys = xy ? xy + 1 : nullptr;
  PlotFrame f = plot_frame(id, height, data_range(xy, n, 2, false), data_range(ys, n, 2, false),
                           false, x_label, y_label);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  draw_axes(dl, f);
  dl->PushClipRect(f.plot_min, f.plot_max, true);
  draw_points(dl, f, xy, labels, n);
  dl->PopClipRect();
  draw_legend(dl, f, label_legend(labels, n));
  if (f.hovered) hover_readout(dl, f, xy, labels, n);
}

}  // namespace statelab::widgets
