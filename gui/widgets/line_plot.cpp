// Line plots and the plot frame shared with the scatter plot (see line_plot.hpp).
// Decimation keeps, per run of points in one pixel column, the highest and lowest in their
// original order: spikes survive, and the vertex count follows the width, not the data.
// Everything goes through the window's draw list; the only per-frame heap use is the tick labels
// and legend strings.
#include "gui/widgets/line_plot.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gui/widgets/colormap.hpp"

namespace statelab::widgets {
namespace {

constexpr float kLineThickness = 1.5f;
constexpr int kNoColumn = std::numeric_limits<int>::min();

ImVec2 offset(ImVec2 p, float dx, float dy) { return ImVec2(p.x + dx, p.y + dy); }

bool plottable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

uint32_t series_color(const PlotSeries& s, size_t index) {
  return s.color != 0 ? s.color : pack(categorical(static_cast<int32_t>(index)));
}

uint32_t with_alpha(uint32_t color, uint8_t alpha) {
  return (color & 0x00FFFFFFu) | uint32_t(alpha) << 24;
}

// Consecutive points in one pixel column, reduced to the highest and lowest on screen.
struct Column {
  int index = kNoColumn;
  ImVec2 top, bottom;
  size_t top_i = 0, bottom_i = 0;
};

void emit(ImDrawList* dl, const Column& c) {
  if (c.index == kNoColumn) return;
  bool top_first = c.top_i <= c.bottom_i;
  dl->PathLineTo(top_first ? c.top : c.bottom);
  if (c.top_i != c.bottom_i) dl->PathLineTo(top_first ? c.bottom : c.top);
}

// The draw list's own path buffer holds the points, so a frame allocates nothing here.
void draw_line(ImDrawList* dl, const PlotFrame& f, const PlotSeries& s, uint32_t color) {
  Column c;
  size_t n = std::min(s.x.size(), s.y.size());
  for (size_t i = 0; i < n; ++i) {
    if (!plottable(s.x[i], s.y[i], f.y.log)) {
      emit(dl, c);
      dl->PathStroke(color, 0, kLineThickness);
      c = Column{};
      continue;
    }
    ImVec2 p(f.x.to_px(s.x[i]), f.y.to_px(s.y[i]));
    int column = static_cast<int>(std::floor(p.x));
    if (column != c.index) {
      emit(dl, c);
      c = Column{column, p, p, i, i};
    } else if (p.y < c.top.y) {
      c.top = p, c.top_i = i;
    } else if (p.y > c.bottom.y) {
      c.bottom = p, c.bottom_i = i;
    }
  }
  emit(dl, c);
  dl->PathStroke(color, 0, kLineThickness);
}

// A band column: its first point's x and the band's extent over the column.
struct Span {
  int index = kNoColumn;
  float x = 0, top = 0, bottom = 0;
};

void band_quad(ImDrawList* dl, const Span& a, const Span& b, uint32_t color) {
  if (a.index == kNoColumn || b.index == kNoColumn) return;
  dl->AddQuadFilled(ImVec2(a.x, a.top), ImVec2(b.x, b.top), ImVec2(b.x, b.bottom),
                    ImVec2(a.x, a.bottom), color);
}

// Quads between neighbouring columns; anti-aliased fill is off because the fringes of adjacent
// translucent quads would overlap into visible seams.
void draw_band(ImDrawList* dl, const PlotFrame& f, const PlotSeries& s, uint32_t color) {
  if (s.band_lo.size() != s.x.size() || s.band_hi.size() != s.x.size()) return;
  ImDrawListFlags saved = dl->Flags;
  dl->Flags &= ~ImDrawListFlags_AntiAliasedFill;
  Span prev, cur;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!plottable(s.x[i], s.band_lo[i], f.y.log) || !plottable(s.x[i], s.band_hi[i], f.y.log)) {
      band_quad(dl, prev, cur, color);
      prev = cur = Span{};
      continue;
    }
    float px = f.x.to_px(s.x[i]), a = f.y.to_px(s.band_lo[i]), b = f.y.to_px(s.band_hi[i]);
    int column = static_cast<int>(std::floor(px));
    if (column == cur.index) {
      cur.top = std::min({cur.top, a, b});
      cur.bottom = std::max({cur.bottom, a, b});
      continue;
    }
    band_quad(dl, prev, cur, color);
    prev = cur;
    cur = Span{column, px, std::min(a, b), std::max(a, b)};
  }
  band_quad(dl, prev, cur, color);
  dl->Flags = saved;
}

void draw_shade_and_markers(ImDrawList* dl, const PlotFrame& f, const PlotOptions& o) {
  if (o.has_shade) {
    float a = f.x.to_px(o.shade_lo), b = f.x.to_px(o.shade_hi);
    dl->AddRectFilled(ImVec2(std::min(a, b), f.plot_min.y), ImVec2(std::max(a, b), f.plot_max.y),
                      ImGui::GetColorU32(ImGuiCol_Text, 0.08f));
  }
  uint32_t dash = ImGui::GetColorU32(ImGuiCol_Text, 0.6f);
  for (double m : o.markers_x) {
    if (!std::isfinite(m)) continue;
    float x = f.x.to_px(m);
    for (float y = f.plot_min.y; y < f.plot_max.y; y += 8) {
      dl->AddLine(ImVec2(x, y), ImVec2(x, std::min(y + 4, f.plot_max.y)), dash);
    }
  }
}

// The index of the plottable point whose x is nearest; a linear scan, so x need not be sorted.
size_t nearest_index(const PlotSeries& s, double x, bool log_y) {
  size_t best = s.x.size();
  double best_d = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
    double d = std::abs(s.x[i] - x);
    if (d < best_d && plottable(s.x[i], s.y[i], log_y)) best = i, best_d = d;
  }
  return best;
}

void hover_readout(ImDrawList* dl, const PlotFrame& f, const std::vector<PlotSeries>& series) {
  ImVec2 mouse = ImGui::GetIO().MousePos;
  if (mouse.x < f.plot_min.x || mouse.x > f.plot_max.x) return;
  dl->AddLine(ImVec2(mouse.x, f.plot_min.y), ImVec2(mouse.x, f.plot_max.y),
              ImGui::GetColorU32(ImGuiCol_Text, 0.4f));
  double x = f.x.from_px(mouse.x);
  ImGui::BeginTooltip();
  ImGui::Text("%s %.5g", *f.x_label ? f.x_label : "x", x);
  for (size_t k = 0; k < series.size(); ++k) {
    const PlotSeries& s = series[k];
    size_t i = nearest_index(s, x, f.y.log);
    if (i == s.x.size()) continue;
    uint32_t color = series_color(s, k);
    dl->AddCircleFilled(ImVec2(f.x.to_px(s.x[i]), f.y.to_px(s.y[i])), 3.0f, color);
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(color), "%s: %.5g",
                       s.label.empty() ? "series" : s.label.c_str(), s.y[i]);
  }
  ImGui::EndTooltip();
}

std::pair<double, double> y_range(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  if (o.fixed_y) return {o.y_lo, o.y_hi};
  std::vector<const std::vector<double>*> arrays;
  for (const PlotSeries& s : series) arrays.insert(arrays.end(), {&s.y, &s.band_lo, &s.band_hi});
  return data_range(arrays, o.log_y);
}

std::pair<double, double> x_range(const std::vector<PlotSeries>& series) {
  std::vector<const std::vector<double>*> arrays;
  for (const PlotSeries& s : series) arrays.push_back(&s.x);
  return data_range(arrays, false, 0.0);
}

}  // namespace

PlotFrame plot_frame(const char* id, float height, std::pair<double, double> x_range,
                     std::pair<double, double> y_range, bool log_y, const char* x_label,
                     const char* y_label) {
  PlotFrame f;
  f.x_label = x_label ? x_label : "";
  f.y_label = y_label ? y_label : "";
  f.min = ImGui::GetCursorScreenPos();
  ImVec2 size(std::max(ImGui::GetContentRegionAvail().x, 80.0f), std::max(height, 60.0f));
  ImGui::InvisibleButton(id, size);
  f.hovered = ImGui::IsItemHovered();
  f.max = offset(f.min, size.x, size.y);

  float line = ImGui::GetTextLineHeight();
  float top = f.min.y + line + 4;
  float bottom = f.max.y - line - 6 - (*f.x_label ? line + 2 : 0);
  f.y = AxisMap{y_range.first, y_range.second, log_y, bottom, top};
  f.y_ticks = axis_ticks(f.y, std::max(2, static_cast<int>((bottom - top) / 30)));
  float label_w = 0;
  for (const std::string& s : f.y_ticks.labels)
    label_w = std::max(label_w, ImGui::CalcTextSize(s.c_str()).x);
  float left = f.min.x + label_w + 10, right = f.max.x - 12;
  f.x = AxisMap{x_range.first, x_range.second, false, left, right};
  f.x_ticks = axis_ticks(f.x, std::max(2, static_cast<int>((right - left) / 90)));
  f.plot_min = ImVec2(left, top);
  f.plot_max = ImVec2(right, bottom);
  return f;
}

void draw_axes(ImDrawList* dl, const PlotFrame& f) {
  uint32_t grid = ImGui::GetColorU32(ImGuiCol_Text, 0.12f);
  uint32_t text = ImGui::GetColorU32(ImGuiCol_Text, 0.75f);
  float line = ImGui::GetTextLineHeight();
  dl->AddRectFilled(f.plot_min, f.plot_max, ImGui::GetColorU32(ImGuiCol_FrameBg));
  for (size_t i = 0; i < f.y_ticks.values.size(); ++i) {
    float y = f.y.to_px(f.y_ticks.values[i]);
    const char* label = f.y_ticks.labels[i].c_str();
    dl->AddLine(ImVec2(f.plot_min.x, y), ImVec2(f.plot_max.x, y), grid);
    float w = ImGui::CalcTextSize(label).x;
    dl->AddText(ImVec2(f.plot_min.x - 6 - w, y - line / 2), text, label);
  }
  for (size_t i = 0; i < f.x_ticks.values.size(); ++i) {
    float x = f.x.to_px(f.x_ticks.values[i]);
    const char* label = f.x_ticks.labels[i].c_str();
    dl->AddLine(ImVec2(x, f.plot_min.y), ImVec2(x, f.plot_max.y), grid);
    float w = ImGui::CalcTextSize(label).x;
    dl->AddText(ImVec2(x - w / 2, f.plot_max.y + 4), text, label);
  }
  dl->AddRect(f.plot_min, f.plot_max, ImGui::GetColorU32(ImGuiCol_Border));
  dl->AddText(ImVec2(f.plot_min.x, f.min.y), text, f.y_label);
  float x_label_w = ImGui::CalcTextSize(f.x_label).x;
  dl->AddText(ImVec2((f.plot_min.x + f.plot_max.x - x_label_w) / 2, f.plot_max.y + line + 6), text,
              f.x_label);
}

void draw_legend(ImDrawList* dl, const PlotFrame& f, const std::vector<LegendEntry>& entries) {
  if (entries.empty()) return;
  float line = ImGui::GetTextLineHeight(), swatch = line * 0.6f, pad = 4;
  float text_w = 0;
  for (const LegendEntry& e : entries)
    text_w = std::max(text_w, ImGui::CalcTextSize(e.text.c_str()).x);
  ImVec2 box_max = offset(f.plot_max, -pad, 0);
  box_max.y = f.plot_min.y + pad + entries.size() * line + 2 * pad;
  ImVec2 box_min(box_max.x - (swatch + text_w + 3 * pad), f.plot_min.y + pad);
  dl->AddRectFilled(box_min, box_max, ImGui::GetColorU32(ImGuiCol_PopupBg, 0.85f));
  dl->AddRect(box_min, box_max, ImGui::GetColorU32(ImGuiCol_Border));
  for (size_t i = 0; i < entries.size(); ++i) {
    ImVec2 row = offset(box_min, pad, pad + i * line);
    float sy = row.y + (line - swatch) / 2;
    dl->AddRectFilled(ImVec2(row.x, sy), ImVec2(row.x + swatch, sy + swatch), entries[i].color);
    dl->AddText(ImVec2(row.x + swatch + pad, row.y), ImGui::GetColorU32(ImGuiCol_Text),
                entries[i].text.c_str());
  }
}

bool line_plot(const char* id, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  PlotFrame f = plot_frame(id, options.height, x_range(series), y_range(series, options),
                           options.log_y, options.x_label.c_str(), options.y_label.c_str());
  ImDrawList* dl = ImGui::GetWindowDrawList();
  draw_axes(dl, f);
  dl->PushClipRect(f.plot_min, f.plot_max, true);
  draw_shade_and_markers(dl, f, options);
  for (size_t k = 0; k < series.size(); ++k) {
    draw_band(dl, f, series[k], with_alpha(series_color(series[k], k), 0x50));
  }
  for (size_t k = 0; k < series.size(); ++k)
    draw_line(dl, f, series[k], series_color(series[k], k));
  dl->PopClipRect();
  if (options.legend) {
    std::vector<LegendEntry> entries;
    for (size_t k = 0; k < series.size(); ++k) {
      if (!series[k].label.empty())
        entries.push_back({series[k].label, series_color(series[k], k)});
    }
    draw_legend(dl, f, entries);
  }
  if (f.hovered) hover_readout(dl, f, series);
  return f.hovered;
}

}  // namespace statelab::widgets
