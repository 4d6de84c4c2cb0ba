// Heatmap, colour bar and label track (see heatmap.hpp). Columns and rows share one mapping:
// input index i starts at left + width * i / n, so a label track and a heatmap of the same width
// and column count line up exactly, whatever the bucketing.
#include "gui/widgets/heatmap.hpp"

#include <imgui.h>

#include <algorithm>
#include <cmath>

#include "gui/widgets/scale.hpp"

namespace statelab::widgets {
namespace {

struct Area {
  ImVec2 min;
  float w, h;
  float x_of(int i, int n) const { return min.x + w * float(i) / float(n); }
  float y_of(int i, int n) const { return min.y + h * float(i) / float(n); }
  // The input index under a screen coordinate, clamped to [0, n).
  static int index_at(float pos, float start, float extent, int n) {
    return std::clamp(static_cast<int>(std::floor((pos - start) / extent * n)), 0, n - 1);
  }
};

// One rectangle per run of equal colour in each output row, out_cols buckets across.
template <typename ColorOf>
void draw_runs(ImDrawList* dl, const Area& a, float y0, float y1, int n, int out_cols,
               ColorOf color_of) {
  int run_start = 0;
  uint32_t run_color = color_of(0);
  for (int j = 1; j <= out_cols; ++j) {
    uint32_t c = j < out_cols ? color_of(j) : ~run_color;  // past the end: always flush
    if (c == run_color) continue;
    float x0 = a.x_of(bucket_edge(run_start, n, out_cols), n);
    float x1 = a.x_of(bucket_edge(j, n, out_cols), n);
    dl->AddRectFilled(ImVec2(x0, y0), ImVec2(x1, y1), run_color);
    run_start = j;
    run_color = c;
  }
}

void draw_cells(ImDrawList* dl, const Area& a, const HeatmapData& d, const ColorScale& scale) {
  int out_rows = std::min(d.rows, std::max(1, static_cast<int>(a.h)));
  int out_cols = std::min(d.cols, std::max(1, static_cast<int>(a.w)));
  for (int i = 0; i < out_rows; ++i) {
    int r0 = bucket_edge(i, d.rows, out_rows), r1 = bucket_edge(i + 1, d.rows, out_rows);
    draw_runs(dl, a, a.y_of(r0, d.rows), a.y_of(r1, d.rows), d.cols, out_cols, [&](int j) {
      int c0 = bucket_edge(j, d.cols, out_cols), c1 = bucket_edge(j + 1, d.cols, out_cols);
      return pack(scale.color(block_mean(d.values, d.cols, r0, r1, c0, c1)));
    });
  }
}

// Integer time ticks under the grid; column c's centre is at c + 0.5 cells.
void draw_time_ticks(ImDrawList* dl, const Area& a, int cols) {
  AxisMap axis{-0.5, cols - 0.5, false, a.min.x, a.min.x + a.w};
  Ticks ticks = nice_ticks(0, cols - 1, std::max(2, static_cast<int>(a.w / 70)));
  uint32_t text = ImGui::GetColorU32(ImGuiCol_Text, 0.75f);
  float bottom = a.min.y + a.h;
  for (size_t i = 0; i < ticks.values.size(); ++i) {
    double v = ticks.values[i];
    if (v < 0 || v > cols - 1 || v != std::floor(v)) continue;
    float x = axis.to_px(v);
    float w = ImGui::CalcTextSize(ticks.labels[i].c_str()).x;
    dl->AddLine(ImVec2(x, bottom), ImVec2(x, bottom + 3), text);
    float tx = std::clamp(x - w / 2, a.min.x, a.min.x + a.w - w);
    dl->AddText(ImVec2(tx, bottom + 3), text, ticks.labels[i].c_str());
  }
}

}  // namespace

bool heatmap(const char* id, const HeatmapData& data, const ColorScale& scale, float height,
             int* hovered_row, int* hovered_col) {
  if (hovered_row) *hovered_row = -1;
  if (hovered_col) *hovered_col = -1;
  Area a{ImGui::GetCursorScreenPos(), std::max(ImGui::GetContentRegionAvail().x, 16.0f),
         std::max(height, 4.0f)};
  ImGui::InvisibleButton(id, ImVec2(a.w, a.h + ImGui::GetTextLineHeight() + 4));
  bool hovered = ImGui::IsItemHovered();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(a.min, ImVec2(a.min.x + a.w, a.min.y + a.h),
                    ImGui::GetColorU32(ImGuiCol_FrameBg));
  if (data.values == nullptr || data.rows <= 0 || data.cols <= 0) return false;
  draw_cells(dl, a, data, scale);
  draw_time_ticks(dl, a, data.cols);

  ImVec2 mouse = ImGui::GetIO().MousePos;
  if (!hovered || mouse.y >= a.min.y + a.h) return false;
  int r = Area::index_at(mouse.y, a.min.y, a.h, data.rows);
  int c = Area::index_at(mouse.x, a.min.x, a.w, data.cols);
  ImGui::SetTooltip("%s %d, %s %d: %.4g", data.row_label.c_str(), r, data.col_label.c_str(), c,
                    data.values[int64_t(r) * data.cols + c]);
  if (hovered_row) *hovered_row = r;
  if (hovered_col) *hovered_col = c;
  return true;
}

void color_bar(const char* id, const ColorScale& scale, float width, float height) {
  ImVec2 p = ImGui::GetCursorScreenPos();
  ImVec2 size(std::max(width, 8.0f), std::max(height, 16.0f));
  ImGui::InvisibleButton(id, size);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  float line = ImGui::GetTextLineHeight();
  float top = p.y + line / 2, bottom = p.y + size.y - line / 2;  // room for the end labels
  float bar_w = std::min(16.0f, size.x * 0.4f);
  int strips = std::max(1, static_cast<int>((bottom - top) / 4));
  for (int k = 0; k < strips; ++k) {  // strip k spans fractions [k, k + 1] / strips, bottom up
    uint32_t lower = pack(colormap(scale.map, double(k) / strips));
    uint32_t upper = pack(colormap(scale.map, double(k + 1) / strips));
    float y0 = bottom - (bottom - top) * (k + 1) / strips,
          y1 = bottom - (bottom - top) * k / strips;
    dl->AddRectFilledMultiColor(ImVec2(p.x, y0), ImVec2(p.x + bar_w, y1), upper, upper, lower,
                                lower);
  }
  dl->AddRect(ImVec2(p.x, top), ImVec2(p.x + bar_w, bottom), ImGui::GetColorU32(ImGuiCol_Border));
  AxisMap axis{scale.lo, scale.hi, false, bottom, top};
  Ticks ticks = axis_ticks(axis, 5);
  uint32_t text = ImGui::GetColorU32(ImGuiCol_Text, 0.75f);
  for (size_t i = 0; i < ticks.values.size(); ++i) {
    float y = axis.to_px(ticks.values[i]);
    dl->AddText(ImVec2(p.x + bar_w + 4, y - line / 2), text, ticks.labels[i].c_str());
  }
}

void label_track(const char* id, const char* name, const int32_t* labels, int n, float height) {
  Area a{ImGui::GetCursorScreenPos(), std::max(ImGui::GetContentRegionAvail().x, 16.0f),
         std::max(height, 2.0f)};
  ImGui::InvisibleButton(id, ImVec2(a.w, a.h));
  if (labels == nullptr || n <= 0) return;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  int out_cols = std::min(n, std::max(1, static_cast<int>(a.w)));
  draw_runs(dl, a, a.min.y, a.min.y + a.h, n, out_cols,
            [&](int j) { return pack(categorical(labels[bucket_edge(j, n, out_cols)])); });
  if (!ImGui::IsItemHovered()) return;
  int t = Area::index_at(ImGui::GetIO().MousePos.x, a.min.x, a.w, n);
  ImGui::SetTooltip("%s %d: %d", name ? name : "label", t, labels[t]);
}

}  // namespace statelab::widgets
