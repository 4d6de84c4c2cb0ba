// The Length generalization window: accuracy against length with the training range shaded,
// the newest live eval, the final eval and any overlaid runs or sweep cells.
#include <imgui.h>
#include <imgui_stdlib.h>

#include "gui/dashboard.hpp"
#include "gui/widgets/line_plot.hpp"

namespace statelab::gui {

namespace {

widgets::PlotSeries series_of(const LengthCurve& c, const std::string& label) {
  widgets::PlotSeries s;
  s.label = label;
  s.x = c.lengths;
  s.y = c.accuracy;
  s.band_lo = c.lo;
  s.band_hi = c.hi;
  return s;
}

}  // namespace

void draw_length(const RunSnapshot& snap, UiState& ui) {
  std::vector<widgets::PlotSeries> series;
  int train_lo = snap.has_config ? snap.config.task.train_lengths[0] : 0;
  int train_hi = snap.has_config ? snap.config.task.train_lengths[1] : 0;
  if (ui.show_eval_history && snap.evals.size() > 1)
    for (size_t i = 0; i + 1 < snap.evals.size(); ++i) {
      auto s = series_of(*snap.evals[i], snap.evals[i]->label);
      s.color = 0x50ffffffu;  // faded: the path to the newest
      series.push_back(std::move(s));
    }
  if (!snap.evals.empty())
    series.push_back(series_of(*snap.evals.back(), "now: " + snap.evals.back()->label));
  if (snap.final_eval)
    series.push_back(series_of(*snap.final_eval, "final: " + snap.final_eval->label));
  for (const auto& o : snap.overlays) {
    series.push_back(series_of(*o, o->label));
    if (train_hi == 0) {
      train_lo = o->train_lo;
      train_hi = o->train_hi;
    }
  }
  ImGui::Checkbox("earlier evals", &ui.show_eval_history);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(220);
  ImGui::InputTextWithHint("##overlay", "run or sweep directory", &ui.overlay_path);
  ImGui::SameLine();
  if (ImGui::Button("Overlay") && !ui.overlay_path.empty()) {
    ui.send(Command::Kind::add_overlay, ui.overlay_path);
  }
  ImGui::SameLine();
  if (ImGui::Button("Clear overlays")) {
    ui.send(Command::Kind::clear_overlays);
  }
  if (series.empty()) {
    ImGui::TextDisabled("No eval yet: one comes at each held-out check, or press e.");
    return;
  }
  widgets::PlotOptions o;
  o.x_label = "length";
  o.y_label = "accuracy";
  o.fixed_y = true;
  o.y_lo = 0;
  o.y_hi = 1.02;
  o.has_shade = train_hi > 0;
  o.shade_lo = train_lo;
  o.shade_hi = train_hi;
  o.height = std::max(120.0f, ImGui::GetContentRegionAvail().y);
  widgets::line_plot("##length", series, o);
}

}  // namespace statelab::gui
