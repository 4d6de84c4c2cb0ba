// The probe windows: Gates (heatmaps time × head of every gate of a layer, under colour tracks
// of the input, the latent state, the model's answer and the decoded state), Memory (per-head
// norms, stabilizers and transition eigenvalues over time, with a second run to compare) and
// State space (PCA trajectories coloured by latent state, decoding accuracy by position).
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>

#include "gui/dashboard.hpp"
#include "gui/widgets/heatmap.hpp"
#include "gui/widgets/line_plot.hpp"
#include "gui/widgets/scatter.hpp"

namespace statelab::gui {

namespace {

constexpr float kBarWidth = 70;

// The layer picker the three windows share; clamps ui.layer to the view's layers.
void layer_picker(const ProbeView& v, UiState& ui) {
  ui.layer = std::clamp(ui.layer, 0, std::max(v.layers - 1, 0));
  ImGui::SetNextItemWidth(90);
  ImGui::SliderInt("block", &ui.layer, 0, std::max(v.layers - 1, 0));
}

void probe_input(const RunSnapshot& snap, UiState& ui) {
  ImGui::SetNextItemWidth(80);
  ImGui::InputInt("sample", &ui.probe_sample);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(80);
  ImGui::InputInt("length (0: auto)", &ui.probe_length);
  ImGui::SameLine();
  ui.probe_sample = std::max(ui.probe_sample, 0);
  ui.probe_length = std::max(ui.probe_length, 0);
  Command c;
  c.kind = Command::Kind::probe;
  c.sample = ui.probe_sample;
  c.length = ui.probe_length;
  if (ImGui::Button("Probe sample")) ui.outbox.push_back(c);
  ImGui::SetNextItemWidth(260);
  ImGui::InputTextWithHint("##typed", "type tokens, e.g. 1 0 1 1", &ui.typed);
  ImGui::SameLine();
  if (ImGui::Button("Probe typed") && !ui.typed.empty()) {
    c.text = ui.typed;
    ui.outbox.push_back(c);
  }
  if (snap.analysis_busy) {
    ImGui::SameLine();
    ImGui::TextDisabled("(computing...)");
  }
}

// Whether an item of this height at the cursor would be seen; if not, its space is reserved
// without drawing it. Gates of a wide layer are tens of thousands of rectangles, most of them
// scrolled out of view.
bool visible_or_skip(float height) {
  const ImVec2 size(ImGui::GetContentRegionAvail().x, height);
  if (ImGui::IsRectVisible(size)) return true;
  ImGui::Dummy(size);
  return false;
}

void track(const char* name, const std::vector<int32_t>& labels) {
  if (labels.empty()) return;
  ImGui::TableNextRow();
  ImGui::TableSetColumnIndex(0);
  widgets::label_track(name, name, labels.data(), int(labels.size()), 10);
  ImGui::TableSetColumnIndex(1);
  ImGui::TextUnformatted(name);
}

}  // namespace

void draw_gates(const RunSnapshot& snap, UiState& ui) {
  probe_input(snap, ui);
  const ProbeView* v = ui.probe.view.get();
  if (!v) {
    ImGui::TextDisabled("No probe yet: one comes with each live eval, or press Probe.");
    return;
  }
  layer_picker(*v, ui);
  ImGui::SameLine();
  ImGui::TextDisabled("%s", v->label.c_str());
  if (!ImGui::BeginTable("##gates", 2, ImGuiTableFlags_SizingStretchProp)) return;
  ImGui::TableSetupColumn("map", ImGuiTableColumnFlags_WidthStretch);
  ImGui::TableSetupColumn("bar", ImGuiTableColumnFlags_WidthFixed, kBarWidth);
  track("input", v->tokens);
  track("latent", v->latent);
  track("answer", v->answer);
  if (ui.layer < int(v->decoded.size())) track("decoded", v->decoded[size_t(ui.layer)]);
  for (const SeriesView& s : ui.probe.series) {
    if (s.layer != ui.layer || s.panel != Panel::gates) continue;
    ImGui::TableNextRow();
    ImGui::TableSetColumnIndex(0);
    ImGui::TextUnformatted(s.name.c_str());
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", s.meaning.c_str());
    // Tall enough for the colour bar's tick labels even with a row or two.
    const float height = s.col_label == "key" ? std::clamp(ImGui::GetContentRegionAvail().x * 0.5f,
                                                           60.0f, 300.0f)  // a square-ish map
                                              : std::clamp(float(s.rows) * 4.0f, 60.0f, 150.0f);
    widgets::HeatmapData data;
    data.values = s.grid.data();
    data.rows = s.rows;
    data.cols = s.cols;
    data.row_label = s.row_label;
    data.col_label = s.col_label;
    // The heatmap adds a row of time ticks below its grid.
    if (visible_or_skip(height + ImGui::GetTextLineHeightWithSpacing()))
      widgets::heatmap(s.name.c_str(), data, s.scale, height);
    ImGui::TableSetColumnIndex(1);
    ImGui::Dummy({1, ImGui::GetTextLineHeightWithSpacing()});
    widgets::color_bar((s.name + "##bar").c_str(), s.scale, kBarWidth - 8, height);
  }
  ImGui::EndTable();
}

void draw_memory(const RunSnapshot& snap, UiState& ui) {
  const ProbeView* v = ui.probe.view.get();
  ImGui::SetNextItemWidth(240);
  ImGui::InputTextWithHint("##compare", "second run to compare", &ui.compare_path);
  ImGui::SameLine();
  if (ImGui::Button("Compare") && !ui.compare_path.empty()) {
    ui.send(Command::Kind::compare, ui.compare_path);
  }
  if (!v) {
    ImGui::TextDisabled("No probe yet.");
    return;
  }
  layer_picker(*v, ui);
  if (ui.compare.view) {
    ImGui::SameLine();
    ImGui::TextDisabled("comparing: %s (%s)", snap.compare_dir.c_str(),
                        ui.compare.view->label.c_str());
  }
  int shown = 0;
  for (const SeriesView& s : ui.probe.series) {
    if (s.layer != ui.layer || s.panel != Panel::memory) continue;
    ++shown;
    std::vector<widgets::PlotSeries> lines;
    auto add = [&](const SeriesView& from, const std::string& prefix, uint32_t alpha) {
      for (size_t h = 0; h < from.per_head.size(); ++h) {
        widgets::PlotSeries p;
        p.label = prefix + "head " + std::to_string(h);
        for (size_t t = 0; t < from.per_head[h].size(); ++t) {
          p.x.push_back(double(t + 1));
          p.y.push_back(from.per_head[h][t]);
        }
        p.color = (widgets::pack(widgets::categorical(int32_t(h))) & 0x00ffffffu) | (alpha << 24);
        lines.push_back(std::move(p));
      }
    };
    add(s, "", 0xff);
    for (const SeriesView& c : ui.compare.series)
      if (c.layer == s.layer && c.name == s.name) add(c, "cmp ", 0x70);
    widgets::PlotOptions o;
    o.x_label = "t";
    o.y_label = "";
    o.markers_x = {double(v->train_hi)};
    o.height = 130;
    o.legend = lines.size() <= 8;
    ImGui::TextUnformatted(s.name.c_str());
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", s.meaning.c_str());
    if (visible_or_skip(o.height)) widgets::line_plot(s.name.c_str(), lines, o);
  }
  if (shown == 0)
    ImGui::TextDisabled("Block %d keeps no recurrent state: no norms or eigenvalues to show.",
                        ui.layer);
}

void draw_state_space(const RunSnapshot& snap, UiState& ui) {
  const ProbeView* v = ui.probe.view.get();
  if (!v) {
    ImGui::TextDisabled("No probe yet.");
    return;
  }
  const float h = std::max(100.0f, ImGui::GetContentRegionAvail().y - 8);
  if (!ImGui::BeginTable("##state", v->layers + 1, ImGuiTableFlags_SizingStretchSame)) return;
  ImGui::TableNextRow();
  for (int l = 0; l < v->layers; ++l) {
    ImGui::TableSetColumnIndex(l);
    ImGui::Text("after block %d", l);
    const auto& xy = v->pca.at(size_t(l));
    widgets::trajectory(("##pca" + std::to_string(l)).c_str(), xy.data(), v->latent.data(),
                        int(xy.size() / 2), h - ImGui::GetTextLineHeightWithSpacing());
  }
  ImGui::TableSetColumnIndex(v->layers);
  ImGui::Text("decoding accuracy (%d held-out samples)", v->probe_set_samples);
  std::vector<widgets::PlotSeries> acc;
  for (int l = 0; l < v->layers; ++l) {
    widgets::PlotSeries s;
    s.label = "block " + std::to_string(l);
    const auto& accuracy = v->decoding_accuracy.at(size_t(l));
    for (size_t t = 0; t < accuracy.size(); ++t) {
      s.x.push_back(double(t + 1));
      s.y.push_back(accuracy[t]);
    }
    acc.push_back(std::move(s));
  }
  widgets::PlotOptions o;
  o.x_label = "position";
  o.y_label = "accuracy";
  o.fixed_y = true;
  o.y_lo = 0;
  o.y_hi = 1.02;
  o.markers_x = {double(v->train_hi)};
  o.height = h - ImGui::GetTextLineHeightWithSpacing();
  widgets::line_plot("##decoding", acc, o);
  ImGui::EndTable();
}

}  // namespace statelab::gui
