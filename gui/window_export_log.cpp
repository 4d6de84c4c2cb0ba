// The Export window (traces, the resolved config, a checkpoint, a screenshot) and the Log.
#include <imgui.h>
#include <imgui_stdlib.h>

#include "gui/dashboard.hpp"

namespace statelab::gui {

namespace {

// An empty field gets a default inside the run directory once there is one.
void default_path(std::string& path, const RunSnapshot& snap, const char* name) {
  if (path.empty() && !snap.dir.empty()) path = snap.dir + "/" + name;
}

}  // namespace

void draw_export(const RunSnapshot& snap, UiState& ui) {
  default_path(ui.export_dir, snap, "traces-dashboard");
  default_path(ui.config_path, snap, "config-resolved.json");
  const bool has_run = snap.has_config;
  ImGui::BeginDisabled(!has_run);
  ImGui::SetNextItemWidth(-150);
  ImGui::InputText("##traces", &ui.export_dir);
  ImGui::SameLine();
  if (ImGui::Button("Export traces")) {
    ui.send(Command::Kind::export_traces, ui.export_dir);
  }
  ImGui::SetNextItemWidth(-150);
  ImGui::InputText("##config", &ui.config_path);
  ImGui::SameLine();
  if (ImGui::Button("Export config")) {
    ui.send(Command::Kind::export_config, ui.config_path);
  }
  const bool can_checkpoint = snap.status == RunStatus::running ||
                              snap.status == RunStatus::paused || snap.status == RunStatus::stopped;
  ImGui::BeginDisabled(!can_checkpoint);
  if (ImGui::Button("Save a checkpoint now")) {
    ui.send(Command::Kind::checkpoint);
  }
  ImGui::EndDisabled();
  ImGui::EndDisabled();
  ImGui::SetNextItemWidth(-150);
  ImGui::InputText("##png", &ui.screenshot_path);
  ImGui::SameLine();
  if (ImGui::Button("Screenshot (PNG)")) ui.screenshot_request = ui.screenshot_path;
  ImGui::TextDisabled("Traces: traces.safetensors, traces.npz, manifest.json, summary.csv of the");
  ImGui::TextDisabled("held-out probe set, as lab probe writes them.");
}

void draw_log(const RunSnapshot& snap, UiState& ui) {
  ImGui::BeginChild("##log", {0, 0}, false, ImGuiWindowFlags_HorizontalScrollbar);
  const bool at_bottom = ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 1;
  ImGuiListClipper clipper;
  clipper.Begin(int(snap.log.size()));
  while (clipper.Step())
    for (int i = clipper.DisplayStart; i < clipper.DisplayEnd; ++i) {
      const LogLine& line = snap.log[size_t(i)];
      const ImVec4 colour =
          line.error ? ImVec4(1, 0.45f, 0.45f, 1) : ImVec4(0.85f, 0.85f, 0.85f, 1);
      ImGui::TextColored(colour, "%7.1fs  %s", line.t, line.text.c_str());
    }
  if (at_bottom) ImGui::SetScrollHereY(1.0f);
  ImGui::EndChild();
}

}  // namespace statelab::gui
