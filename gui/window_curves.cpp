// The Curves window: loss, accuracy (training, held-out checks, live evals at chosen lengths)
// and learning rate against the step.
#include <imgui.h>

#include <cmath>

#include "gui/dashboard.hpp"
#include "gui/widgets/line_plot.hpp"

namespace statelab::gui {

namespace {

using widgets::PlotOptions;
using widgets::PlotSeries;

PlotSeries from_points(const char* label, const std::vector<CurvePoint>& points,
                       double CurvePoint::*field) {
  PlotSeries s;
  s.label = label;
  s.x.reserve(points.size());
  s.y.reserve(points.size());
  for (const auto& p : points) {
    s.x.push_back(p.step);
    s.y.push_back(p.*field);
  }
  return s;
}

// Accuracy at length L over the live evals that measured it.
PlotSeries eval_at(const RunSnapshot& snap, int L) {
  PlotSeries s;
  s.label = "eval L=" + std::to_string(L);
  for (const auto& e : snap.evals)
    for (size_t i = 0; i < e->lengths.size(); ++i)
      if (int(e->lengths[i]) == L) {
        s.x.push_back(e->step);
        s.y.push_back(e->accuracy[i]);
      }
  return s;
}

}  // namespace

void CurveSeries::update(const RunSnapshot& snap, const std::set<int>& lengths) {
  // A snapshot's curves only grow, so their sizes (with its version) say whether they changed.
  const std::vector<uint64_t> now = {snap.version, snap.steps.size(), snap.intervals.size(),
                                     snap.checks.size(), snap.evals.size()};
  if (now == built_from_ && lengths == lengths_) return;
  built_from_ = now;
  lengths_ = lengths;
  loss = {from_points("loss (step)", snap.steps, &CurvePoint::loss)};
  if (!snap.intervals.empty())
    loss.push_back(from_points("loss (interval mean)", snap.intervals, &CurvePoint::loss));
  accuracy = {from_points("train", snap.steps, &CurvePoint::accuracy)};
  if (!snap.checks.empty()) {
    PlotSeries checks;
    checks.label = "held-out check";
    for (const auto& [step, a] : snap.checks) {
      checks.x.push_back(step);
      checks.y.push_back(a);
    }
    accuracy.push_back(checks);
  }
  for (int L : lengths) accuracy.push_back(eval_at(snap, L));
  lr = {from_points("lr", snap.steps, &CurvePoint::lr)};
}

void draw_curves(const RunSnapshot& snap, UiState& ui) {
  if (snap.steps.empty()) {
    ImGui::TextDisabled("No steps yet: start a run (Run window) or open a finished one.");
    return;
  }
  const float h =
      std::max(90.0f, (ImGui::GetContentRegionAvail().y - 3 * ImGui::GetFrameHeight()) / 3);
  ImGui::Checkbox("log loss", &ui.log_loss);
  if (!snap.evals.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled("| eval lengths:");
    for (double L : snap.evals.back()->lengths) {
      ImGui::SameLine();
      bool on = ui.curve_lengths.count(int(L)) > 0;
      if (ImGui::Checkbox(std::to_string(int(L)).c_str(), &on)) {
        if (on)
          ui.curve_lengths.insert(int(L));
        else
          ui.curve_lengths.erase(int(L));
      }
    }
  }
  ui.curves.update(snap, ui.curve_lengths);
  PlotOptions loss;
  loss.x_label = "step";
  loss.y_label = "loss";
  loss.log_y = ui.log_loss;
  loss.height = h;
  widgets::line_plot("##loss", ui.curves.loss, loss);

  PlotOptions acc;
  acc.x_label = "step";
  acc.y_label = "accuracy";
  acc.fixed_y = true;
  acc.y_lo = 0;
  acc.y_hi = 1.02;
  acc.height = h;
  widgets::line_plot("##accuracy", ui.curves.accuracy, acc);

  PlotOptions lr;
  lr.x_label = "step";
  lr.y_label = "learning rate";
  lr.height = h;
  widgets::line_plot("##lr", ui.curves.lr, lr);
}

}  // namespace statelab::gui
